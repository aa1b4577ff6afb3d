package serving_test

import (
	"archive/tar"
	"bytes"
	"compress/flate"
	"context"
	"encoding/binary"
	"hash/crc32"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"

	"github.com/sagedeploy/sagedeploy/localsm"
	"github.com/sagedeploy/sagedeploy/localsm/localsmtest"
)

// bomb is a model.tar.gz whose one member, xgboost-model, is size bytes of zeros: a few hundred
// KB that inflate to size. Compressing size bytes would take a minute under the race detector,
// so one MiB of zeros is deflated once and its block repeated: deflate blocks may stand alone,
// and a sync flush ends each on a byte boundary.
func bomb(t *testing.T, size int64) []byte {
	t.Helper()
	var hdr bytes.Buffer
	tw := tar.NewWriter(&hdr)
	if err := tw.WriteHeader(&tar.Header{Name: "xgboost-model", Mode: 0o644, Size: size, Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	zeros := make([]byte, 1<<20)
	var out bytes.Buffer
	out.Write([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff}) // gzip header: deflate, no name, unknown OS
	deflate := func(data []byte, final bool) []byte {
		var b bytes.Buffer
		fw, _ := flate.NewWriter(&b, flate.BestCompression)
		fw.Write(data)
		if final {
			fw.Close()
		} else {
			fw.Flush()
		}
		return b.Bytes()
	}
	out.Write(deflate(hdr.Bytes(), false))
	crc := crc32.ChecksumIEEE(hdr.Bytes())
	block := deflate(zeros, false)
	for range size / int64(len(zeros)) {
		out.Write(block)
		crc = crc32.Update(crc, crc32.IEEETable, zeros)
	}
	out.Write(deflate(zeros[:1024], true)) // the tar archive's end: two zero blocks
	crc = crc32.Update(crc, crc32.IEEETable, zeros[:1024])
	total := int64(hdr.Len()) + size + 1024
	out.Write(binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32(nil, crc), uint32(total)))
	if size%int64(len(zeros)) != 0 {
		t.Fatalf("bomb sizes are whole MiB, not %d bytes", size)
	}
	return out.Bytes()
}

// procStatus reads a field of /proc/self/status in bytes (VmRSS, VmHWM).
func procStatus(t *testing.T, field string) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("needs /proc/self/status to measure memory: %v", err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return kb << 10
		}
	}
	t.Skipf("/proc/self/status has no %s", field)
	return 0
}

// TestBombFailsTheEndpoint: a model.tar.gz that inflates past --max-model-size fails its
// endpoint with a FailureReason naming the cap, and the process never holds the inflated
// bytes: its peak RSS grows by less than the cap.
func TestBombFailsTheEndpoint(t *testing.T) {
	const limit, size = 64 << 20, 256 << 20
	data := bomb(t, size)
	srv := localsmtest.Start(t, localsm.Options{MaxModelBytes: limit})
	ctx := context.Background()
	creds := credentials.NewStaticCredentialsProvider("AKID", "secret", "")
	s3c := awss3.New(awss3.Options{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL()), UsePathStyle: true, Credentials: creds})
	sm := sagemaker.New(sagemaker.Options{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL()), Credentials: creds})
	if _, err := s3c.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: aws.String("models")}); err != nil {
		t.Fatal(err)
	}
	if _, err := s3c.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("models"), Key: aws.String("bomb/model.tar.gz"), Body: bytes.NewReader(data)}); err != nil {
		t.Fatal(err)
	}
	// Reset the peak RSS (VmHWM) so that it measures from here on.
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		t.Skipf("cannot reset the peak RSS: %v", err)
	}
	before := procStatus(t, "VmRSS")

	if _, err := sm.CreateModel(ctx, &sagemaker.CreateModelInput{ModelName: aws.String("bomb"), ExecutionRoleArn: aws.String("arn:aws:iam::000000000000:role/sm"),
		PrimaryContainer: &smtypes.ContainerDefinition{Image: aws.String("683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"),
			ModelDataUrl: aws.String("s3://models/bomb/model.tar.gz")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := sm.CreateEndpointConfig(ctx, &sagemaker.CreateEndpointConfigInput{EndpointConfigName: aws.String("bomb"),
		ProductionVariants: []smtypes.ProductionVariant{{VariantName: aws.String("AllTraffic"), ModelName: aws.String("bomb"),
			InstanceType: smtypes.ProductionVariantInstanceTypeMlM5Large, InitialInstanceCount: aws.Int32(1)}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String("bomb"), EndpointConfigName: aws.String("bomb")}); err != nil {
		t.Fatal(err)
	}
	waiter := sagemaker.NewEndpointInServiceWaiter(sm, func(o *sagemaker.EndpointInServiceWaiterOptions) {
		o.MinDelay, o.MaxDelay = 20*time.Millisecond, 200*time.Millisecond
	})
	if err := waiter.Wait(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String("bomb")}, 2*time.Minute); err == nil {
		t.Fatal("the endpoint serving a decompression bomb went InService")
	}
	out, err := sm.DescribeEndpoint(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String("bomb")})
	if err != nil {
		t.Fatal(err)
	}
	reason := aws.ToString(out.FailureReason)
	if out.EndpointStatus != smtypes.EndpointStatusFailed || !strings.Contains(reason, "more than 64 MiB") || !strings.Contains(reason, "--max-model-size") {
		t.Fatalf("endpoint %s: %q; want Failed with a reason naming the 64 MiB cap (--max-model-size)", out.EndpointStatus, reason)
	}
	peak := procStatus(t, "VmHWM")
	t.Logf("RSS %d MiB before the deploy, peak %d MiB during it (cap %d MiB, bomb %d MiB)", before>>20, peak>>20, limit>>20, size>>20)
	if peak-before > limit {
		t.Errorf("peak RSS grew by %d MiB while failing a %d MiB bomb; want less than the %d MiB cap", (peak-before)>>20, size>>20, limit>>20)
	}
}
