package deploy

import (
	"cmp"
	"encoding/json"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
)

// endpointSettings are what an endpoint configuration sets besides its model and instances: the
// variant's name, data capture, asynchronous inference, serverless capacity and the storage key.
// A new configuration for an endpoint that runs (update, rollback, promote) carries the running
// one's settings over, so that no deploy silently turns off data capture or renames the variant
// that autoscaling and alarms name.
type endpointSettings struct {
	Variant     string                                   `json:"-"`
	DataCapture *types.DataCaptureConfig                 `json:"data_capture,omitempty"`
	Async       *types.AsyncInferenceConfig              `json:"async,omitempty"`
	Serverless  *types.ProductionVariantServerlessConfig `json:"serverless,omitempty"`
	KmsKeyID    string                                   `json:"kms_key_id,omitempty"`
}

// settingsOf reads the settings of a described configuration (its first variant).
func settingsOf(out *sagemaker.DescribeEndpointConfigOutput) endpointSettings {
	s := endpointSettings{DataCapture: out.DataCaptureConfig, Async: out.AsyncInferenceConfig, KmsKeyID: aws.ToString(out.KmsKeyId)}
	if len(out.ProductionVariants) > 0 {
		pv := out.ProductionVariants[0]
		s.Variant, s.Serverless = aws.ToString(pv.VariantName), pv.ServerlessConfig
	}
	return s
}

// variant is the variant name, DefaultVariant when none is known.
func (s endpointSettings) variant() string { return cmp.Or(s.Variant, DefaultVariant) }

// key identifies the settings beyond the variant in a configuration's name: empty when there are
// none, so that plain configurations keep the names they always had.
func (s endpointSettings) key() string {
	if s.DataCapture == nil && s.Async == nil && s.Serverless == nil && s.KmsKeyID == "" {
		return ""
	}
	b, err := json.Marshal(s)
	if err != nil {
		return "settings"
	}
	return string(b)
}

// describe lists the settings for messages ("data capture, async").
func (s endpointSettings) describe() string {
	var parts []string
	if s.DataCapture != nil {
		parts = append(parts, "data capture")
	}
	if s.Async != nil {
		parts = append(parts, "async inference")
	}
	if s.Serverless != nil {
		parts = append(parts, "serverless")
	}
	if s.KmsKeyID != "" {
		parts = append(parts, "KMS key")
	}
	return strings.Join(parts, ", ")
}

// serverlessUnlessAsked reports whether a configuration with these settings stays serverless: the
// running one is, and the request names no instances.
func (s endpointSettings) serverlessUnlessAsked(itype string, count int) bool {
	return s.Serverless != nil && itype == "" && count == 0
}
