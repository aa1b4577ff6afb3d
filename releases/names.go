package releases

import "regexp"

// sageMakerName is SageMaker's own pattern for model package group and endpoint names. Models
// and environments are checked against it wherever a name enters (API, dashboard, CLI): the
// endpoint {model}-{environment} is built from them, and a name SageMaker would refuse, or one
// with "/" or "<", would give a component whose pages cannot be opened.
var sageMakerName = regexp.MustCompile(`^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$`)

const nameRule = "use letters, digits and hyphens, starting and ending with a letter or digit, at most 63 characters (SageMaker's rule for model package groups and endpoints)"

// CheckModelName refuses a model name SageMaker would not accept as a model package group.
func CheckModelName(name string) error {
	if !sageMakerName.MatchString(name) {
		return Errorf(EINVALID, "model name %q is not valid: %s, e.g. abalone or churn-v2", name, nameRule)
	}
	return nil
}

// CheckEnvironmentName refuses an environment name that cannot be part of an endpoint name.
func CheckEnvironmentName(name string) error {
	if !sageMakerName.MatchString(name) {
		return Errorf(EINVALID, "environment name %q is not valid: %s, e.g. dev, staging or prod", name, nameRule)
	}
	return nil
}
