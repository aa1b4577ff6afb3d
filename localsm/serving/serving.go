// Package serving runs the model servers behind local SageMaker endpoints: the built-in XGBoost
// server (in process, from the model.tar.gz artifact) and process containers (a local command
// honouring SageMaker's serving contract: GET /ping and POST /invocations on a given port).
//
// The process container contract: an image mapped to a command (ImageMap, from
// `sagedeploy local --image-map IMAGE=COMMAND`) runs as `/bin/sh -c COMMAND` (exec'd when it is
// a simple command), once per instance, in the local SageMaker's working directory and
// environment plus:
//
//	SAGEMAKER_BIND_TO_PORT, PORT   the port to serve on, on 127.0.0.1 (SageMaker uses 8080)
//	SM_MODEL_DIR                   the model.tar.gz extracted, read-only (SageMaker: /opt/ml/model)
//	SAGEMAKER_ENDPOINT_NAME, SAGEMAKER_VARIANT_NAME, SAGEMAKER_INSTANCE_ID
//	                               which endpoint, variant and instance this process serves
//	the container's Environment    from CreateModel, as given
//
// It must answer GET /ping with 200 within the health timeout before it gets traffic, then
// POST /invocations with the request's body, Content-Type, Accept and
// X-Amzn-SageMaker-Custom-Attributes; its status, body, Content-Type and custom attributes go
// back to the caller (a non-2xx status as a ModelError). It runs in its own process group with
// stdout and stderr appended to a per-instance log file; it is stopped with SIGTERM to the
// group, SIGKILL after a grace period, and reaped.
package serving

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Invocation is one request to a model server and its answer. The runtime pools Invocations,
// so a server appends its answer to Out rather than allocating a new slice.
type Invocation struct {
	Body             []byte
	ContentType      string
	Accept           string
	CustomAttributes string

	// Status is the model server's HTTP status; anything but 2xx is a model error whose
	// message is Out.
	Status               int
	RespContentType      string
	RespCustomAttributes string
	Out                  []byte
}

// Reset clears an Invocation for reuse, keeping Out's storage.
func (inv *Invocation) Reset() {
	out := inv.Out[:0]
	*inv = Invocation{Out: out}
}

// Instance is one running model server: one instance of one container of a variant.
type Instance interface {
	// Invoke sends one request. An error means the server could not be reached or answered
	// garbage (an infrastructure failure); a model's own refusal is a non-2xx inv.Status.
	Invoke(ctx context.Context, inv *Invocation) error
	// Alive reports false once the server has stopped on its own (a process that exited).
	Alive() bool
	// LogPath is where the server's output goes, for error messages; empty when none.
	LogPath() string
	// Stop stops the server and releases what it holds. In-flight requests are the caller's
	// business: the runtime drains them first.
	Stop(ctx context.Context) error
}

// Kind says which kind of model server serves an image.
type Kind int

const (
	// KindXGBoost is the built-in XGBoost server.
	KindXGBoost Kind = iota + 1
	// KindProcess is a local command from the image map.
	KindProcess
)

func (k Kind) String() string {
	switch k {
	case KindXGBoost:
		return "built-in XGBoost server"
	case KindProcess:
		return "process container"
	}
	return "unknown"
}

// ErrUnsupportedImage is wrapped by Resolve when an image has neither a mapping nor built-in support.
var ErrUnsupportedImage = errors.New("unsupported container image")

// xgboostImage matches SageMaker's XGBoost images in any region and partition, e.g.
// 683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1 and the older
// 811284229777.dkr.ecr.us-east-1.amazonaws.com/xgboost:latest.
var xgboostImage = regexp.MustCompile(`^[0-9]{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/(sagemaker-xgboost|xgboost)(:[A-Za-z0-9._-]+)?(@sha256:[0-9a-f]{64})?$`)

// IsXGBoostImage reports whether image is SageMaker's XGBoost image (any region, any tag), or an
// image whose repository is named sagemaker-xgboost (a local mirror of it).
func IsXGBoostImage(image string) bool {
	if xgboostImage.MatchString(image) {
		return true
	}
	return repositoryName(image) == "sagemaker-xgboost"
}

// Resolve decides how an image is served. A mapping in imageMap wins over built-in support, so a
// user can serve even the XGBoost image with their own command. Map keys match the image exactly
// or, when the key has no tag or digest, any tag of that image.
func Resolve(image string, imageMap map[string]string) (Kind, string, error) {
	if cmd, ok := lookupImage(image, imageMap); ok {
		if strings.TrimSpace(cmd) == "" {
			return 0, "", fmt.Errorf("%w: the image map entry for %s has an empty command", ErrUnsupportedImage, image)
		}
		return KindProcess, cmd, nil
	}
	if IsXGBoostImage(image) {
		return KindXGBoost, "", nil
	}
	if image == "" {
		return 0, "", fmt.Errorf("%w: the model's container has no image", ErrUnsupportedImage)
	}
	return 0, "", fmt.Errorf("%w: sagedeploy local cannot run image %s: it serves SageMaker's XGBoost "+
		"image (sagemaker-xgboost) itself and runs any other image as a local command you map to it, "+
		"e.g. `sagedeploy local --image-map '%s=python3 serve.py'`; the command must answer GET /ping "+
		"and POST /invocations on $SAGEMAKER_BIND_TO_PORT with the model in $SM_MODEL_DIR",
		ErrUnsupportedImage, image, image)
}

func lookupImage(image string, imageMap map[string]string) (string, bool) {
	if len(imageMap) == 0 {
		return "", false
	}
	if cmd, ok := imageMap[image]; ok {
		return cmd, true
	}
	if cmd, ok := imageMap[stripTag(image)]; ok {
		return cmd, true
	}
	return "", false
}

// stripTag removes a trailing :tag and @digest from an image reference, leaving the registry's
// port alone (a colon before the last slash is a port, not a tag).
func stripTag(image string) string {
	if i := strings.IndexByte(image, '@'); i >= 0 {
		image = image[:i]
	}
	slash := strings.LastIndexByte(image, '/')
	if i := strings.LastIndexByte(image, ':'); i > slash {
		image = image[:i]
	}
	return image
}

func repositoryName(image string) string {
	image = stripTag(image)
	if i := strings.LastIndexByte(image, '/'); i >= 0 {
		image = image[i+1:]
	}
	return image
}
