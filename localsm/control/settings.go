package control

import (
	"slices"
	"strings"

	"github.com/sagedeploy/sagedeploy/localsm/spec"
)

// Endpoint configuration settings beyond the variants: serverless variants, data capture and
// async inference. Each is checked as SageMaker checks it when the configuration is created,
// and turned into the serving layer's terms when an endpoint deploys it.

// serverlessConfig is a variant's ServerlessConfig. ProvisionedConcurrency is newer than the
// service model this control plane validates against, so it is checked here.
type serverlessConfig struct {
	MemorySizeInMB         int
	MaxConcurrency         int
	ProvisionedConcurrency *int
}

// checkServerless refuses what SageMaker refuses in a variant's ServerlessConfig.
func checkServerless(variant string, s serverlessConfig) (*spec.Serverless, error) {
	if s.MemorySizeInMB%1024 != 0 {
		return nil, errValidation("Serverless variant %s asks for MemorySizeInMB %d; it must be one of 1024, 2048, 3072, 4096, 5120 or 6144.", variant, s.MemorySizeInMB)
	}
	out := &spec.Serverless{MemorySizeInMB: s.MemorySizeInMB, MaxConcurrency: s.MaxConcurrency}
	if p := s.ProvisionedConcurrency; p != nil {
		if *p < 1 || *p > s.MaxConcurrency {
			return nil, errValidation("Serverless variant %s asks for ProvisionedConcurrency %d; it must be between 1 and its MaxConcurrency (%d).", variant, *p, s.MaxConcurrency)
		}
		out.ProvisionedConcurrency = *p
	}
	return out, nil
}

// dataCaptureInput is DataCaptureConfig as CreateEndpointConfig takes it.
type dataCaptureInput struct {
	EnableCapture             *bool
	InitialSamplingPercentage int
	DestinationS3Uri          string
	CaptureOptions            []struct{ CaptureMode string }
	CaptureContentTypeHeader  *struct{ CsvContentTypes, JsonContentTypes []string }
}

// dataCaptureOf checks a configuration's DataCaptureConfig and returns it in the serving
// layer's terms; nil when the configuration has none.
func dataCaptureOf(config string, raw map[string]any) (*spec.DataCapture, error) {
	if raw == nil {
		return nil, nil
	}
	var in dataCaptureInput
	if err := bind(raw, &in); err != nil {
		return nil, err
	}
	if !isS3Prefix(in.DestinationS3Uri) {
		return nil, errValidation("DataCaptureConfig of endpoint configuration %s: DestinationS3Uri %q must be an s3://BUCKET[/PREFIX] URL (the local SageMaker writes capture files to its own S3).", config, in.DestinationS3Uri)
	}
	dc := &spec.DataCapture{Enabled: in.EnableCapture == nil || *in.EnableCapture,
		SamplingPercentage: in.InitialSamplingPercentage, DestinationS3URI: in.DestinationS3Uri}
	for _, o := range in.CaptureOptions {
		switch {
		case o.CaptureMode == "Input" && !dc.Input:
			dc.Input = true
		case o.CaptureMode == "Output" && !dc.Output:
			dc.Output = true
		case o.CaptureMode == "InputAndOutput":
			dc.Input, dc.Output = true, true
		default:
			return nil, errValidation("DataCaptureConfig of endpoint configuration %s lists CaptureMode %s more than once.", config, o.CaptureMode)
		}
	}
	if h := in.CaptureContentTypeHeader; h != nil {
		if overlap := slices.ContainsFunc(h.CsvContentTypes, func(t string) bool { return slices.Contains(h.JsonContentTypes, t) }); overlap {
			return nil, errValidation("DataCaptureConfig of endpoint configuration %s lists a content type as both CSV and JSON in CaptureContentTypeHeader.", config)
		}
		dc.CSVContentTypes, dc.JSONContentTypes = h.CsvContentTypes, h.JsonContentTypes
	}
	return dc, nil
}

// asyncOf checks a configuration's AsyncInferenceConfig and returns it in the serving layer's
// terms; nil when the configuration has none.
func asyncOf(config string, raw map[string]any) (*spec.Async, error) {
	if raw == nil {
		return nil, nil
	}
	var in struct {
		ClientConfig *struct{ MaxConcurrentInvocationsPerInstance int }
		OutputConfig struct{ S3OutputPath, S3FailurePath string }
	}
	if err := bind(raw, &in); err != nil {
		return nil, err
	}
	out := in.OutputConfig
	if !isS3Prefix(out.S3OutputPath) {
		return nil, errValidation("AsyncInferenceConfig of endpoint configuration %s: OutputConfig.S3OutputPath %q must be an s3://BUCKET[/PREFIX] URL where results are written.", config, out.S3OutputPath)
	}
	if out.S3FailurePath != "" && !isS3Prefix(out.S3FailurePath) {
		return nil, errValidation("AsyncInferenceConfig of endpoint configuration %s: OutputConfig.S3FailurePath %q must be an s3://BUCKET[/PREFIX] URL where errors are written.", config, out.S3FailurePath)
	}
	a := &spec.Async{S3OutputPath: out.S3OutputPath, S3FailurePath: out.S3FailurePath}
	if in.ClientConfig != nil {
		a.MaxConcurrentInvocationsPerInstance = in.ClientConfig.MaxConcurrentInvocationsPerInstance
	}
	return a, nil
}

func isS3Prefix(u string) bool {
	rest, ok := strings.CutPrefix(u, "s3://")
	bucket, _, _ := strings.Cut(rest, "/")
	return ok && bucket != ""
}

// checkConfigSettings refuses combinations SageMaker refuses: serverless and instance-based
// variants in one configuration, and async inference on serverless variants.
func checkConfigSettings(config string, variants []configVariant, raw map[string]any) error {
	serverless := 0
	for _, v := range variants {
		if v.ServerlessConfig != nil {
			serverless++
		}
	}
	if serverless > 0 && serverless < len(variants) {
		return errValidation("Endpoint configuration %s mixes serverless and instance-based production variants; use one kind in a configuration.", config)
	}
	if _, err := dataCaptureOf(config, mapOf(raw, "DataCaptureConfig")); err != nil {
		return err
	}
	if async := mapOf(raw, "AsyncInferenceConfig"); async != nil {
		if serverless > 0 {
			return errValidation("Endpoint configuration %s has AsyncInferenceConfig and serverless variants; asynchronous inference needs instance-based variants.", config)
		}
		if _, err := asyncOf(config, async); err != nil {
			return err
		}
	}
	return nil
}

func mapOf(in map[string]any, key string) map[string]any {
	m, _ := in[key].(map[string]any)
	return m
}
