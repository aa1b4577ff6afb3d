package quotas_test

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/servicequotas"
	"github.com/aws/smithy-go"

	"github.com/sagedeploy/sagedeploy/localsm"
	"github.com/sagedeploy/sagedeploy/localsm/localsmtest"
	"github.com/sagedeploy/sagedeploy/localsm/quotas"
)

// The AWS SDK's Service Quotas client reads the endpoint quotas sagedeploy local was given, and
// the default for the rest, by name (ListServiceQuotas) and by code (GetServiceQuota).
func TestEndpointQuotasThroughTheSDK(t *testing.T) {
	srv := localsmtest.Start(t, localsm.Options{EndpointQuotas: map[string]float64{"ml.m5.large": 2}})
	c := servicequotas.New(servicequotas.Options{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL()),
		Credentials: credentials.NewStaticCredentialsProvider("AKIAQUOTAS", "secret", "")})
	ctx := context.Background()
	byName := map[string]float64{}
	codes := map[string]string{}
	p := servicequotas.NewListServiceQuotasPaginator(c, &servicequotas.ListServiceQuotasInput{ServiceCode: aws.String("sagemaker")})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatalf("ListServiceQuotas: %v", err)
		}
		for _, q := range page.Quotas {
			byName[aws.ToString(q.QuotaName)] = aws.ToFloat64(q.Value)
			codes[aws.ToString(q.QuotaName)] = aws.ToString(q.QuotaCode)
		}
	}
	if v, ok := byName[quotas.EndpointQuotaName("ml.m5.large")]; !ok || v != 2 {
		t.Errorf("ml.m5.large endpoint quota = %v (listed %v); want 2", v, ok)
	}
	if v := byName[quotas.EndpointQuotaName("ml.c5.xlarge")]; v != quotas.DefaultEndpointInstances {
		t.Errorf("ml.c5.xlarge endpoint quota = %v; want the default %d", v, quotas.DefaultEndpointInstances)
	}
	got, err := c.GetServiceQuota(ctx, &servicequotas.GetServiceQuotaInput{ServiceCode: aws.String("sagemaker"), QuotaCode: aws.String(codes[quotas.EndpointQuotaName("ml.m5.large")])})
	if err != nil || aws.ToFloat64(got.Quota.Value) != 2 {
		t.Fatalf("GetServiceQuota: %v %+v", err, got)
	}
	_, err = c.GetServiceQuota(ctx, &servicequotas.GetServiceQuotaInput{ServiceCode: aws.String("sagemaker"), QuotaCode: aws.String("L-NOPE")})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "NoSuchResourceException" {
		t.Errorf("unknown quota code: %v", err)
	}
}

func TestParseLimits(t *testing.T) {
	got, err := quotas.ParseLimits([]string{"ml.m5.large=2,ml.c5.xlarge=4", "ml.t2.medium=0"})
	if err != nil || got["ml.m5.large"] != 2 || got["ml.c5.xlarge"] != 4 || got["ml.t2.medium"] != 0 {
		t.Errorf("ParseLimits = %v, %v", got, err)
	}
	if _, err := quotas.ParseLimits([]string{"ml.m5.large"}); err == nil {
		t.Error("a quota without a count was accepted")
	}
	if _, err := quotas.New(quotas.Options{EndpointInstances: map[string]float64{"ml.nope": 1}}); err == nil {
		t.Error("a quota for an unknown instance type was accepted")
	}
}
