package deploy

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
)

// endpointSnapshot is one reading of an endpoint — its description, its tags and, when it is
// InService, what its configuration serves — taken once and passed down, so that one step of a
// deploy, rollback, promote or scale never asks SageMaker the same question twice.
type endpointSnapshot struct {
	desc *sagemaker.DescribeEndpointOutput // nil when the endpoint does not exist
	tags map[string]string                 // empty when it does not exist
	// config is what the endpoint serves, read when it is InService; configErr says why it
	// could not be read (then config holds only its name).
	config    configInfo
	configErr error
}

// readEndpoint takes a snapshot of the endpoint (one DescribeEndpoint).
func (d *Deployer) readEndpoint(ctx context.Context, name string) (*endpointSnapshot, error) {
	desc, err := d.describeEndpoint(ctx, name)
	if err != nil {
		return nil, err
	}
	return d.snapshotOf(ctx, desc)
}

// refresh reads endpoint name again, reusing the configuration s read when it still serves.
func (d *Deployer) refresh(ctx context.Context, name string, s *endpointSnapshot) (*endpointSnapshot, error) {
	desc, err := d.describeEndpoint(ctx, name)
	if err != nil {
		return nil, err
	}
	if desc == nil || desc.EndpointStatus != types.EndpointStatusInService || !s.inService() ||
		aws.ToString(desc.EndpointConfigName) != s.configName() || s.configErr != nil {
		return d.snapshotOf(ctx, desc)
	}
	fresh := &endpointSnapshot{desc: desc, config: s.config}
	if fresh.tags, err = d.listTags(ctx, fresh.arn()); err != nil {
		return nil, err
	}
	return fresh, nil
}

// snapshotOf completes a description just read with the endpoint's tags and configuration.
func (d *Deployer) snapshotOf(ctx context.Context, desc *sagemaker.DescribeEndpointOutput) (*endpointSnapshot, error) {
	s := &endpointSnapshot{desc: desc, tags: map[string]string{}}
	if desc == nil {
		return s, nil
	}
	tags, err := d.listTags(ctx, aws.ToString(desc.EndpointArn))
	switch {
	case err == nil:
		s.tags = tags
	case !isNotFound(err):
		return nil, err
	}
	if desc.EndpointStatus == types.EndpointStatusInService {
		s.config, s.configErr = d.describeConfig(ctx, s.configName())
		s.config.Name = s.configName()
	}
	return s, nil
}

func (s *endpointSnapshot) exists() bool { return s.desc != nil }

func (s *endpointSnapshot) arn() string { return aws.ToString(s.desc.EndpointArn) }

func (s *endpointSnapshot) status() types.EndpointStatus { return s.desc.EndpointStatus }

func (s *endpointSnapshot) configName() string { return aws.ToString(s.desc.EndpointConfigName) }

func (s *endpointSnapshot) failureReason() string { return aws.ToString(s.desc.FailureReason) }

func (s *endpointSnapshot) modified() time.Time { return aws.ToTime(s.desc.LastModifiedTime) }

// inService reports whether the endpoint exists and is InService.
func (s *endpointSnapshot) inService() bool {
	return s.exists() && s.status() == types.EndpointStatusInService
}

// serving is what the endpoint serves, when it is InService and that could be read.
func (s *endpointSnapshot) serving() (configInfo, bool) {
	if !s.inService() || s.configErr != nil {
		return configInfo{}, false
	}
	return s.config, true
}

// history is the configurations the endpoint served, from its tags, oldest first.
func (s *endpointSnapshot) history() []HistoryEntry { return parseHistory(s.tags) }

// lastSeq is the sequence number of the newest history entry, 0 when there is none.
func (s *endpointSnapshot) lastSeq() int {
	if h := s.history(); len(h) > 0 {
		return h[len(h)-1].Seq
	}
	return 0
}

// instances is the live instance count of the first variant, or the configuration's.
func (s *endpointSnapshot) instances() int { return currentInstances(s.desc, s.config.InstanceCount) }

// readSettled takes a snapshot of the endpoint, first waiting (up to timeout) for a change under
// way to finish. The snapshot says when the endpoint does not exist.
func (d *Deployer) readSettled(ctx context.Context, name string, timeout time.Duration, sink func(Event)) (*endpointSnapshot, error) {
	snap, err := d.readEndpoint(ctx, name)
	if err != nil || !snap.exists() || !pending(snap.status()) {
		return snap, err
	}
	return d.waitForOther(ctx, name, snap, d.now().Add(timeout), sink)
}

// notInService says why an endpoint that exists cannot be worked on.
func (s *endpointSnapshot) notInService(name, what string) error {
	return fmt.Errorf("endpoint %s is %s (%s): %s", name, s.status(), s.failureReason(), what)
}
