package app_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"

	"github.com/berth-io/berth/internal/testserver/testserverbin"
)

// BenchmarkStartup compares the time from CreateEndpoint to InService
// (one instance of a local-command model server, observed by polling
// DescribeEndpoint like a client) with the baseline of starting the same
// model server by hand and polling its /ping. The difference is what berth
// adds: API, persistence, artifact handling and health checking.
func BenchmarkStartup(b *testing.B) {
	const poll = 2 * time.Millisecond
	b.Run("direct-process", func(b *testing.B) {
		bin := testserverbin.Build(b)
		client := &http.Client{Timeout: time.Second}
		for i := 0; b.Loop(); i++ {
			port := freePort(b)
			cmd := exec.Command(bin)
			cmd.Env = []string{"SAGEMAKER_BIND_TO_PORT=" + strconv.Itoa(port)}
			if err := cmd.Start(); err != nil {
				b.Fatal(err)
			}
			url := fmt.Sprintf("http://127.0.0.1:%d/ping", port)
			for {
				resp, err := client.Get(url)
				if err == nil {
					resp.Body.Close()
					if resp.StatusCode == http.StatusOK {
						break
					}
				}
				time.Sleep(poll)
			}
			b.StopTimer()
			cmd.Process.Kill()
			cmd.Wait()
			b.StartTimer()
		}
	})
	b.Run("berth-create-endpoint", func(b *testing.B) {
		s := startServer(b, testConfig(b, b.TempDir()))
		ctx := context.Background()
		if _, err := s.sm.CreateModel(ctx, &sagemaker.CreateModelInput{
			ModelName: aws.String("m"), ExecutionRoleArn: aws.String("arn:aws:iam::000000000000:role/r"),
			PrimaryContainer: &smtypes.ContainerDefinition{Image: aws.String(testImage)},
		}); err != nil {
			b.Fatal(err)
		}
		if _, err := s.sm.CreateEndpointConfig(ctx, &sagemaker.CreateEndpointConfigInput{
			EndpointConfigName: aws.String("c"),
			ProductionVariants: []smtypes.ProductionVariant{{VariantName: aws.String("v"), ModelName: aws.String("m"), InitialInstanceCount: aws.Int32(1)}},
		}); err != nil {
			b.Fatal(err)
		}
		for i := 0; b.Loop(); i++ {
			name := fmt.Sprintf("e%d", i)
			if _, err := s.sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String(name), EndpointConfigName: aws.String("c")}); err != nil {
				b.Fatal(err)
			}
			for {
				d, err := s.sm.DescribeEndpoint(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String(name)})
				if err != nil {
					b.Fatal(err)
				}
				if d.EndpointStatus == smtypes.EndpointStatusInService {
					break
				}
				if d.EndpointStatus == smtypes.EndpointStatusFailed {
					b.Fatal(aws.ToString(d.FailureReason))
				}
				time.Sleep(poll)
			}
			b.StopTimer()
			if _, err := s.sm.DeleteEndpoint(ctx, &sagemaker.DeleteEndpointInput{EndpointName: aws.String(name)}); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	})
}

func freePort(tb testing.TB) int {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// BenchmarkInvokeFastPath is one InvokeEndpoint request at a time through
// the whole server (front listener, runtime API, router, upstream client)
// to a model-server process, from a raw keep-alive client that allocates
// nothing itself: allocs/op is berth's own per-request allocation, and
// -memprofile says where it is.
func BenchmarkInvokeFastPath(b *testing.B) {
	s := startServer(b, testConfig(b, b.TempDir()))
	s.deploy(b, "bench", nil, "", 1)
	conn, err := net.Dial("tcp", s.app.Addr())
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	body := []byte("1.5,2.5,3.5,4.5,5.5,6.5,7.5,8.5,9.5,10.5,11.5,12.5,13.5,14.5,15.5,16")
	req := []byte(fmt.Sprintf("POST /endpoints/bench/invocations HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/csv\r\nContent-Length: %d\r\n\r\n%s", len(body), body))
	buf := make([]byte, 4096)
	for b.Loop() {
		if _, err := conn.Write(req); err != nil {
			b.Fatal(err)
		}
		// The answer is small: read until its body (the echo) has arrived.
		n := 0
		for {
			m, err := conn.Read(buf[n:])
			if err != nil {
				b.Fatal(err)
			}
			n += m
			if n >= len(body) && string(buf[n-len(body):n]) == string(body) {
				break
			}
		}
	}
}
