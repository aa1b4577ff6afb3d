package s3_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/chromedp/chromedp"

	"github.com/sagedeploy/sagedeploy/internal/browsertest"
	"github.com/sagedeploy/sagedeploy/localsm"
	"github.com/sagedeploy/sagedeploy/localsm/localsmtest"
)

// page serves an empty HTML page: an origin (another loopback port) to run scripts from.
func page(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, "<!doctype html><title>a web page</title><p>hello</p>")
	}))
	t.Cleanup(srv.Close)
	return srv
}

// attack is what a page can try against the local S3: read the artifact, replace it with a PUT
// (preflighted), replace it with a form POST upload (a "simple" request, sent without asking).
const attack = `(async () => {
  const out = [];
  try { const r = await fetch(%[1]q); out.push("read:" + r.status + ":" + await r.text()); } catch (e) { out.push("read:blocked"); }
  try { const r = await fetch(%[1]q, {method: "PUT", body: "replaced by a web page"}); out.push("put:" + r.status); } catch (e) { out.push("put:blocked"); }
  const form = new FormData();
  form.append("key", "m/model.tar.gz");
  form.append("file", new Blob(["replaced by a form"]), "model.tar.gz");
  try { await fetch(%[2]q, {method: "POST", mode: "no-cors", body: form}); out.push("post:sent"); } catch (e) { out.push("post:blocked"); }
  return out.join(" ");
})()`

// TestWebPagesCannotReachArtifacts: in headless Chromium, a page on another loopback port gets
// no data from the local S3 and cannot change an object, by PUT or by form POST; only the
// origin named by --s3-cors-origin can read, and only it gets CORS headers.
func TestWebPagesCannotReachArtifacts(t *testing.T) {
	evil, friend := page(t), page(t)
	srv := localsmtest.Start(t, localsm.Options{S3CORSOrigin: friend.URL})
	c := s3Client(srv.URL())
	ctx := context.Background()
	if _, err := c.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: aws.String("models")}); err != nil {
		t.Fatal(err)
	}
	const model = "the model that serves"
	if _, err := c.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("models"), Key: aws.String("m/model.tar.gz"), Body: strings.NewReader(model)}); err != nil {
		t.Fatal(err)
	}
	objURL, bucketURL := srv.URL()+"/models/m/model.tar.gz", srv.URL()+"/models"
	browser := browsertest.New(t, time.Minute)

	run := func(pageURL string) string {
		t.Helper()
		if err := chromedp.Do(browser, chromedp.Navigate(pageURL)); err != nil {
			t.Fatal(err)
		}
		got, err := chromedp.Run(browser, chromedp.Evaluate[string](fmt.Sprintf(attack, objURL, bucketURL), chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := run(evil.URL); got != "read:blocked put:blocked post:sent" {
		t.Errorf("a page on another origin: %s; want the read and the PUT blocked", got)
	}
	if got, _ := getObject(t, c, "models", "m/model.tar.gz"); got != model {
		t.Fatalf("a page on another origin changed the object to %q", got)
	}
	if got := run(friend.URL); !strings.HasPrefix(got, "read:200:"+model) {
		t.Errorf("the page of --s3-cors-origin: %s; want it to read the object", got)
	}

	// Outside a browser: no CORS header for SDK calls; a foreign preflight is refused.
	resp, err := http.Get(objURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if h := resp.Header.Get("Access-Control-Allow-Origin"); h != "" || resp.StatusCode != 200 {
		t.Errorf("GET without Origin: HTTP %d, Access-Control-Allow-Origin %q; want 200 and none", resp.StatusCode, h)
	}
	req, _ := http.NewRequest(http.MethodOptions, objURL, nil)
	req.Header.Set("Origin", evil.URL)
	req.Header.Set("Access-Control-Request-Method", "PUT")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if h := resp.Header.Get("Access-Control-Allow-Origin"); h != "" || resp.StatusCode != http.StatusForbidden {
		t.Errorf("preflight from %s: HTTP %d, Access-Control-Allow-Origin %q; want 403 and none", evil.URL, resp.StatusCode, h)
	}
}

// TestNoCORSByDefault: without --s3-cors-origin no answer carries CORS headers, and requests
// that name an origin are refused.
func TestNoCORSByDefault(t *testing.T) {
	srv := localsmtest.Start(t, localsm.Options{})
	req, _ := http.NewRequest(http.MethodGet, srv.URL()+"/", nil)
	req.Header.Set("Origin", "http://127.0.0.1:1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || len(resp.Header.Values("Access-Control-Allow-Origin")) != 0 {
		t.Errorf("ListBuckets from a web origin: HTTP %d, CORS %v; want 403 without CORS headers", resp.StatusCode, resp.Header.Values("Access-Control-Allow-Origin"))
	}
	resp, err = http.Get(srv.URL() + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for k := range resp.Header {
		if strings.HasPrefix(k, "Access-Control-") {
			t.Errorf("ListBuckets answers with %s", k)
		}
	}
}
