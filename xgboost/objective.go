package xgboost

import (
	"math"
	"slices"
)

// transform turns margins into predictions, as the objective's PredTransform does in xgboost.
type transform uint8

const (
	transformIdentity     transform = iota
	transformSigmoid                // logistic: 1 / (1 + e^-x)
	transformExp                    // log link: e^x
	transformHinge                  // 1 if x > 0, else 0
	transformSoftmax                // multi:softprob: probabilities over the groups
	transformSoftmaxClass           // multi:softmax: index of the largest margin
)

// baseMargin maps the saved base_score (a probability or mean) to margin space, as the
// objective's ProbToMargin does.
type baseMargin uint8

const (
	baseIdentity baseMargin = iota
	baseLogit               // -log(1/p - 1)
	baseLog                 // log(x)
)

type objectiveSpec struct {
	transform transform
	base      baseMargin
}

var objectives = map[string]objectiveSpec{
	"reg:squarederror":     {transformIdentity, baseIdentity},
	"reg:linear":           {transformIdentity, baseIdentity}, // the name before xgboost 1.0
	"reg:squaredlogerror":  {transformIdentity, baseIdentity},
	"reg:pseudohubererror": {transformIdentity, baseIdentity},
	"reg:absoluteerror":    {transformIdentity, baseIdentity},
	"reg:quantileerror":    {transformIdentity, baseIdentity},
	"reg:logistic":         {transformSigmoid, baseLogit},
	"binary:logistic":      {transformSigmoid, baseLogit},
	"binary:logitraw":      {transformIdentity, baseIdentity}, // ProbToMargin is the identity here
	"binary:hinge":         {transformHinge, baseIdentity},
	"count:poisson":        {transformExp, baseLog},
	"reg:gamma":            {transformExp, baseLog},
	"reg:tweedie":          {transformExp, baseLog},
	"survival:cox":         {transformExp, baseLog},
	"survival:aft":         {transformExp, baseLog},
	"multi:softprob":       {transformSoftmax, baseIdentity},
	"multi:softmax":        {transformSoftmaxClass, baseIdentity},
	"rank:pairwise":        {transformIdentity, baseIdentity},
	"rank:ndcg":            {transformIdentity, baseIdentity},
	"rank:map":             {transformIdentity, baseIdentity},
}

// Objectives lists the objectives Load accepts.
func Objectives() []string {
	var names []string
	for name := range objectives {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

func (b baseMargin) apply(x float32) float32 {
	switch b {
	case baseLogit:
		return -logf(1/x - 1)
	case baseLog:
		return logf(x)
	}
	return x
}

func (t transform) apply(out []float32) {
	switch t {
	case transformSigmoid:
		for i, x := range out {
			out[i] = sigmoid(x)
		}
	case transformExp:
		for i, x := range out {
			out[i] = expf(x)
		}
	case transformHinge:
		for i, x := range out {
			if x > 0 {
				out[i] = 1
			} else {
				out[i] = 0
			}
		}
	case transformSoftmax:
		softmax(out)
	}
}

// sigmoid is xgboost's common::Sigmoid: the exponent is clamped so that it cannot overflow.
func sigmoid(x float32) float32 {
	const eps = 1e-16
	return 1 / (expf(min(-x, 88.7)) + 1 + eps)
}

// softmax is xgboost's common::Softmax: float32 exponentials, a float64 sum.
func softmax(out []float32) {
	if len(out) == 0 {
		return
	}
	wmax := out[0]
	for _, x := range out[1:] {
		wmax = max(wmax, x)
	}
	var wsum float64
	for i, x := range out {
		out[i] = expf(x - wmax)
		wsum += float64(out[i])
	}
	for i := range out {
		out[i] /= float32(wsum)
	}
}

func expf(x float32) float32 { return float32(math.Exp(float64(x))) }
func logf(x float32) float32 { return float32(math.Log(float64(x))) }
