package app_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
)

// TestListPagingUnderConcurrentWrites pages through a set of models that
// nobody touches while another goroutine creates and deletes other models
// between the pages: in every order and with filters, each untouched
// model comes back exactly once.
func TestListPagingUnderConcurrentWrites(t *testing.T) {
	s := startServer(t, testConfig(t, t.TempDir()))
	ctx := context.Background()
	const n = 24
	// Untouched models and churned ones alternate in creation time and in
	// name, so a churned model sits next to untouched ones in every order.
	var churnMu sync.Mutex
	churn := []string{}
	for i := range n {
		s.createModel(t, fmt.Sprintf("m-%03d-keep", i), nil, "")
		name := fmt.Sprintf("m-%03d-churn-0", i)
		s.createModel(t, name, nil, "")
		churn = append(churn, name)
	}
	start := time.Now()

	// The churner deletes the oldest churned model and creates a new one
	// (named among the untouched ones) for each tick it is given.
	ticks := make(chan struct{})
	var done sync.WaitGroup
	var gen atomic.Int64
	done.Add(1)
	go func() {
		defer done.Done()
		for range ticks {
			churnMu.Lock()
			old := churn[0]
			churn = churn[1:]
			churnMu.Unlock()
			if _, err := s.sm.DeleteModel(ctx, &sagemaker.DeleteModelInput{ModelName: aws.String(old)}); err != nil {
				t.Errorf("DeleteModel %s: %v", old, err)
			}
			g := gen.Add(1)
			name := fmt.Sprintf("m-%03d-churn-%d", int(g)%n, g)
			s.createModel(t, name, nil, "")
			churnMu.Lock()
			churn = append(churn, name)
			churnMu.Unlock()
			// And a deletion of a model created during this paging.
			s.createModel(t, name+"-x", nil, "")
			if _, err := s.sm.DeleteModel(ctx, &sagemaker.DeleteModelInput{ModelName: aws.String(name + "-x")}); err != nil {
				t.Errorf("DeleteModel %s-x: %v", name, err)
			}
		}
	}()
	defer func() { close(ticks); done.Wait() }()
	// churnBetweenPages makes the churner change the set between two
	// pages.
	churnBetweenPages := func() { ticks <- struct{}{} }

	keep := func(i int) bool { return true }
	cases := []struct {
		name   string
		in     sagemaker.ListModelsInput
		wanted func(i int) bool
	}{
		{"Name Ascending", sagemaker.ListModelsInput{SortBy: smtypes.ModelSortKeyName, SortOrder: smtypes.OrderKeyAscending}, keep},
		{"Name Descending", sagemaker.ListModelsInput{SortBy: smtypes.ModelSortKeyName, SortOrder: smtypes.OrderKeyDescending}, keep},
		{"CreationTime Ascending", sagemaker.ListModelsInput{SortBy: smtypes.ModelSortKeyCreationTime, SortOrder: smtypes.OrderKeyAscending}, keep},
		{"CreationTime Descending", sagemaker.ListModelsInput{SortBy: smtypes.ModelSortKeyCreationTime, SortOrder: smtypes.OrderKeyDescending}, keep},
		{"default order", sagemaker.ListModelsInput{}, keep},
		{"NameContains", sagemaker.ListModelsInput{NameContains: aws.String("m-01"), SortBy: smtypes.ModelSortKeyName}, func(i int) bool { return i >= 10 && i < 20 }},
		{"CreationTimeAfter", sagemaker.ListModelsInput{CreationTimeAfter: aws.Time(start.Add(-time.Hour)), SortOrder: smtypes.OrderKeyAscending}, keep},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			in.MaxResults = aws.Int32(3)
			p := sagemaker.NewListModelsPaginator(s.sm, &in)
			seen := map[string]int{}
			for p.HasMorePages() {
				page, err := p.NextPage(ctx)
				if err != nil {
					t.Fatalf("ListModels: %v", err)
				}
				for _, m := range page.Models {
					seen[aws.ToString(m.ModelName)]++
				}
				churnBetweenPages()
			}
			var missing, repeated []string
			for i := range n {
				name := fmt.Sprintf("m-%03d-keep", i)
				switch c := seen[name]; {
				case !tc.wanted(i) && c > 0:
					t.Errorf("%s listed, but the filter excludes it", name)
				case tc.wanted(i) && c == 0:
					missing = append(missing, name)
				case c > 1:
					repeated = append(repeated, fmt.Sprintf("%s×%d", name, c))
				}
			}
			if len(missing) > 0 || len(repeated) > 0 {
				t.Errorf("untouched models missing: %v; repeated: %v", missing, repeated)
			}
			for name := range seen {
				if !strings.HasPrefix(name, "m-") {
					t.Errorf("unexpected model %s", name)
				}
			}
		})
	}
}

// TestListNextTokenTamperChecked: a NextToken changed by the client, issued
// by another berth, for another listing or another order is refused with a
// ValidationException.
func TestListNextTokenTamperChecked(t *testing.T) {
	s := startServer(t, testConfig(t, t.TempDir()))
	other := startServer(t, testConfig(t, t.TempDir()))
	ctx := context.Background()
	for i := range 3 {
		s.createModel(t, fmt.Sprintf("tok-%d", i), nil, "")
		other.createModel(t, fmt.Sprintf("tok-%d", i), nil, "")
	}
	first, err := s.sm.ListModels(ctx, &sagemaker.ListModelsInput{MaxResults: aws.Int32(1)})
	if err != nil || first.NextToken == nil {
		t.Fatalf("first page: %+v %v", first, err)
	}
	tok := aws.ToString(first.NextToken)
	if strings.Contains(tok, "tok-") {
		t.Errorf("token %q shows the name in clear", tok)
	}
	foreign, err := other.sm.ListModels(ctx, &sagemaker.ListModelsInput{MaxResults: aws.Int32(1)})
	if err != nil {
		t.Fatal(err)
	}
	flip := []byte(tok)
	flip[len(flip)/4] ^= 1
	if flip[len(flip)/4] == '.' {
		flip[len(flip)/4] = 'A'
	}
	for name, call := range map[string]func() error{
		"tampered": func() error {
			_, err := s.sm.ListModels(ctx, &sagemaker.ListModelsInput{MaxResults: aws.Int32(1), NextToken: aws.String(string(flip))})
			return err
		},
		"from another berth": func() error {
			_, err := s.sm.ListModels(ctx, &sagemaker.ListModelsInput{MaxResults: aws.Int32(1), NextToken: foreign.NextToken})
			return err
		},
		"offset token": func() error {
			_, err := s.sm.ListModels(ctx, &sagemaker.ListModelsInput{MaxResults: aws.Int32(1), NextToken: aws.String("YmVydGgtb2Zmc2V0OjE")})
			return err
		},
		"another listing": func() error {
			_, err := s.sm.ListEndpointConfigs(ctx, &sagemaker.ListEndpointConfigsInput{MaxResults: aws.Int32(1), NextToken: aws.String(tok)})
			return err
		},
		"another order": func() error {
			_, err := s.sm.ListModels(ctx, &sagemaker.ListModelsInput{MaxResults: aws.Int32(1), SortBy: smtypes.ModelSortKeyName, NextToken: aws.String(tok)})
			return err
		},
	} {
		if code, msg := apiError(call()); code != "ValidationException" || !strings.Contains(msg, "nextToken") {
			t.Errorf("%s token: %s %q, want ValidationException about nextToken", name, code, msg)
		}
	}
	// The genuine token still works, also after a restart of the server.
	next, err := s.sm.ListModels(ctx, &sagemaker.ListModelsInput{MaxResults: aws.Int32(1), NextToken: aws.String(tok)})
	if err != nil || len(next.Models) != 1 {
		t.Fatalf("second page: %+v %v", next, err)
	}
	cfg := testConfig(t, s.dataDir)
	if err := s.app.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	again := startServer(t, cfg)
	after, err := again.sm.ListModels(ctx, &sagemaker.ListModelsInput{MaxResults: aws.Int32(1), NextToken: aws.String(tok)})
	if err != nil || len(after.Models) != 1 || aws.ToString(after.Models[0].ModelName) != aws.ToString(next.Models[0].ModelName) {
		t.Fatalf("second page after a restart: %+v %v", after, err)
	}
}
