// Package quotas is the local SageMaker's Service Quotas: the account's SageMaker endpoint
// instance quotas ("ml.m5.large for endpoint usage"), answered over AWS JSON 1.1 (X-Amz-Target
// ServiceQuotasV20190624.GetServiceQuota / ListServiceQuotas), so that a deployer's capacity
// preflight runs against sagedeploy local as it does against AWS. The control plane enforces them
// (EndpointInstances) as SageMaker does.
package quotas

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
)

// TargetPrefix is the X-Amz-Target prefix of Service Quotas calls.
const TargetPrefix = "ServiceQuotasV20190624."

// DefaultEndpointInstances is each instance type's endpoint quota unless Options say otherwise.
const DefaultEndpointInstances = 10

// Options configure the service.
type Options struct {
	// Default is every instance type's endpoint quota; DefaultEndpointInstances when 0.
	Default float64
	// EndpointInstances sets the quota of single instance types, e.g. {"ml.m5.large": 2}.
	EndpointInstances map[string]float64
	Account           string
	Region            string
	Logger            *slog.Logger
}

// Service answers Service Quotas calls. It is immutable once built.
type Service struct {
	opts   Options
	log    *slog.Logger
	quotas []Quota // every SageMaker endpoint quota, by name
}

// Quota is a ServiceQuota as the API answers it.
type Quota struct {
	ServiceCode string  `json:"ServiceCode"`
	ServiceName string  `json:"ServiceName"`
	QuotaArn    string  `json:"QuotaArn"`
	QuotaCode   string  `json:"QuotaCode"`
	QuotaName   string  `json:"QuotaName"`
	Value       float64 `json:"Value"`
	Unit        string  `json:"Unit"`
	Adjustable  bool    `json:"Adjustable"`
	GlobalQuota bool    `json:"GlobalQuota"`
}

// EndpointQuotaName is the name AWS gives the endpoint quota of an instance type.
func EndpointQuotaName(instanceType string) string { return instanceType + " for endpoint usage" }

// New builds the service; it refuses a quota for an instance type SageMaker does not host on.
func New(opts Options) (*Service, error) {
	opts.Default = cmp.Or(opts.Default, DefaultEndpointInstances)
	opts.Account = cmp.Or(opts.Account, "000000000000")
	opts.Region = cmp.Or(opts.Region, "us-east-1")
	s := &Service{opts: opts, log: cmp.Or(opts.Logger, slog.Default())}
	known := map[string]bool{}
	for _, t := range types.ProductionVariantInstanceType("").Values() {
		known[string(t)] = true
		s.quotas = append(s.quotas, s.quota(string(t)))
	}
	for t, v := range opts.EndpointInstances {
		if !known[t] {
			return nil, fmt.Errorf("quota for %q: not a SageMaker hosting instance type (e.g. ml.m5.large)", t)
		}
		if v < 0 {
			return nil, fmt.Errorf("quota for %s: %v instances is negative", t, v)
		}
	}
	slices.SortFunc(s.quotas, func(a, b Quota) int { return strings.Compare(a.QuotaCode, b.QuotaCode) })
	return s, nil
}

// EndpointInstances is the account's endpoint quota of an instance type, in instances.
func (s *Service) EndpointInstances(instanceType string) float64 { return s.quota(instanceType).Value }

func (s *Service) quota(instanceType string) Quota {
	v, ok := s.opts.EndpointInstances[instanceType]
	if !ok {
		v = s.opts.Default
	}
	sum := sha256.Sum256([]byte("sagemaker endpoint " + instanceType))
	code := "L-" + strings.ToUpper(hex.EncodeToString(sum[:4]))
	return Quota{ServiceCode: "sagemaker", ServiceName: "Amazon SageMaker", QuotaCode: code,
		QuotaArn:  fmt.Sprintf("arn:aws:servicequotas:%s:%s:sagemaker/%s", s.opts.Region, s.opts.Account, code),
		QuotaName: EndpointQuotaName(instanceType), Value: v, Unit: "None", Adjustable: true}
}

// ParseLimits reads "ml.m5.large=2,ml.c5.xlarge=4" (the CLI flag's form).
func ParseLimits(specs []string) (map[string]float64, error) {
	out := map[string]float64{}
	for _, spec := range specs {
		for part := range strings.SplitSeq(spec, ",") {
			t, v, ok := strings.Cut(strings.TrimSpace(part), "=")
			n, err := strconv.ParseFloat(v, 64)
			if !ok || err != nil || n < 0 {
				return nil, fmt.Errorf("endpoint quota %q: write INSTANCE_TYPE=COUNT, e.g. ml.m5.large=2", part)
			}
			out[t] = n
		}
	}
	return out, nil
}

// Claims reports whether a request is a Service Quotas call.
func Claims(r *http.Request, signedFor string) bool {
	return strings.HasPrefix(r.Header.Get("X-Amz-Target"), TargetPrefix) || signedFor == "servicequotas"
}

// ServeHTTP answers one call.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), TargetPrefix)
	var in struct {
		ServiceCode string
		QuotaCode   string
		NextToken   string
		MaxResults  int
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err == nil && len(strings.TrimSpace(string(body))) > 0 {
		err = json.Unmarshal(body, &in)
	}
	if err != nil {
		writeError(w, apiErr("IllegalArgumentException", "could not read the request: %v", err))
		return
	}
	var out any
	switch op {
	case "GetServiceQuota":
		out, err = s.get(in.ServiceCode, in.QuotaCode)
	case "ListServiceQuotas":
		out, err = s.list(in.ServiceCode, in.QuotaCode, in.NextToken, in.MaxResults)
	default:
		err = apiErr("UnknownOperationException", "Service Quotas operation %q is not served by sagedeploy local; it answers GetServiceQuota and ListServiceQuotas for SageMaker endpoint instances", op)
	}
	if err != nil {
		writeError(w, err)
		s.log.Info("service quotas call", "op", op, "error", err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Service) get(service, code string) (any, error) {
	if service != "sagemaker" {
		return nil, apiErr("NoSuchResourceException", "sagedeploy local knows the quotas of service sagemaker only, not %q", service)
	}
	for _, q := range s.quotas {
		if q.QuotaCode == code {
			return map[string]any{"Quota": q}, nil
		}
	}
	return nil, apiErr("NoSuchResourceException", "quota %s of sagemaker does not exist", code)
}

// list pages through the quotas; the token is the index of the next one.
func (s *Service) list(service, code, token string, size int) (any, error) {
	if service != "sagemaker" {
		return map[string]any{"Quotas": []Quota{}}, nil
	}
	from, _ := strconv.Atoi(token)
	if from < 0 || from > len(s.quotas) {
		return nil, apiErr("InvalidPaginationTokenException", "NextToken %q is not one this service gave", token)
	}
	size = min(cmp.Or(max(size, 0), 100), 100)
	var page []Quota
	next := from
	for ; next < len(s.quotas) && len(page) < size; next++ {
		if code == "" || s.quotas[next].QuotaCode == code {
			page = append(page, s.quotas[next])
		}
	}
	out := map[string]any{"Quotas": page}
	if next < len(s.quotas) {
		out["NextToken"] = strconv.Itoa(next)
	}
	return out, nil
}

// apiError is an AWS JSON error.
type apiError struct{ code, msg string }

func (e *apiError) Error() string { return e.code + ": " + e.msg }

func apiErr(code, format string, args ...any) error {
	return &apiError{code: code, msg: fmt.Sprintf(format, args...)}
}

func writeError(w http.ResponseWriter, err error) {
	var ae *apiError
	if !errors.As(err, &ae) {
		ae = &apiError{code: "ServiceException", msg: err.Error()}
	}
	w.Header().Set("X-Amzn-ErrorType", ae.code)
	writeJSON(w, http.StatusBadRequest, map[string]string{"__type": ae.code, "message": ae.msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.WriteHeader(status)
	w.Write(body)
}
