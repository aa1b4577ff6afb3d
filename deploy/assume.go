package deploy

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// assumeRole makes cfg's calls run as opts.AssumeRoleARN, assumed with cfg's credentials: the
// pipeline file's role of an environment in another account.
func assumeRole(cfg *aws.Config, opts Options, local bool) {
	if opts.AssumeRoleARN == "" {
		return
	}
	base := sts.NewFromConfig(*cfg, func(o *sts.Options) {
		if local {
			o.BaseEndpoint = aws.String(opts.EndpointURL)
		}
	})
	p := stscreds.NewAssumeRoleProvider(base, opts.AssumeRoleARN, func(o *stscreds.AssumeRoleOptions) {
		o.RoleSessionName = "sagedeploy"
	})
	cfg.Credentials = aws.NewCredentialsCache(p)
}
