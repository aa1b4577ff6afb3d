package deploy_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"

	"github.com/sagedeploy/sagedeploy/deploy"
)

// BenchmarkRepointEndpoint measures an update of a serving endpoint between two existing
// configurations on the local SageMaker, through Deployer.Deploy and, as the baseline in the same
// run, through bare SDK calls (UpdateEndpoint, then DescribeEndpoint in a tight loop until
// InService). The ratio metric is deployer time / baseline time: what waiting with a poll
// schedule, history tags and the rollback check cost on top of the update itself.
func BenchmarkRepointEndpoint(b *testing.B) {
	l := startLocal(b)
	d, _ := l.deployer(nil)
	ctx := context.Background()
	var cfgs [2]string
	for i, v := range []int{1, 2} {
		register(b, d, "abalone", v, true)
		r, err := d.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "dev", Version: v})
		if err != nil {
			b.Fatal(err)
		}
		cfgs[i] = r.EndpointConfigName
	}
	sm := l.sm()
	var sdk, dep time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		if _, err := sm.UpdateEndpoint(ctx, &sagemaker.UpdateEndpointInput{EndpointName: aws.String("abalone-dev"), EndpointConfigName: aws.String(cfgs[i%2])}); err != nil {
			b.Fatal(err)
		}
		for {
			out, err := sm.DescribeEndpoint(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String("abalone-dev")})
			if err != nil {
				b.Fatal(err)
			}
			if out.EndpointStatus == smtypes.EndpointStatusInService {
				break
			}
		}
		sdk += time.Since(start)
		start = time.Now()
		if _, err := d.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "dev", EndpointConfigName: cfgs[(i+1)%2]}); err != nil {
			b.Fatal(err)
		}
		dep += time.Since(start)
	}
	b.ReportMetric(float64(sdk.Nanoseconds())/float64(b.N), "sdk-ns/op")
	b.ReportMetric(float64(dep.Nanoseconds())/float64(b.N), "deployer-ns/op")
	b.ReportMetric(float64(dep)/float64(sdk), "ratio")
}

// BenchmarkPreflight measures what the preflight checks add to an update on the local SageMaker:
// the same re-pointing with and without them, alternating in one run. The ratio metric is
// with / without.
func BenchmarkPreflight(b *testing.B) {
	l := startLocal(b)
	d, _ := l.deployer(nil)
	ctx := context.Background()
	var cfgs [2]string
	for i, v := range []int{1, 2} {
		register(b, d, "abalone", v, true)
		r, err := d.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "dev", Version: v})
		if err != nil {
			b.Fatal(err)
		}
		cfgs[i] = r.EndpointConfigName
	}
	var with, without time.Duration
	var nWith, nWithout int
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// Each deploy re-points to the other configuration; every other one skips preflight.
		skip := i%2 == 0
		start := time.Now()
		if _, err := d.Deploy(ctx, deploy.DeployRequest{Model: "abalone", Environment: "dev", EndpointConfigName: cfgs[i%2], SkipPreflight: skip}); err != nil {
			b.Fatal(err)
		}
		if skip {
			without, nWithout = without+time.Since(start), nWithout+1
		} else {
			with, nWith = with+time.Since(start), nWith+1
		}
	}
	if nWith == 0 || nWithout == 0 {
		return
	}
	with, without = with/time.Duration(nWith), without/time.Duration(nWithout)
	b.ReportMetric(float64(with.Nanoseconds()), "with-ns/op")
	b.ReportMetric(float64(without.Nanoseconds()), "without-ns/op")
	b.ReportMetric(float64(with)/float64(without), "ratio")
}
