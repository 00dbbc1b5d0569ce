// Package batch runs the data path of a transform job: it lists the input
// objects, splits each into records and mini-batches, sends the batches to
// the job's model instances, and writes each object's output whole.
//
// The control plane (internal/controlplane) owns the job as a resource: it
// validates the request, persists it, starts the instances and publishes
// them to the router under a table of the job's own, and then calls Run
// from the job's reconcile pass. Run knows nothing of instances; it sends
// every mini-batch through an Invoker (the router's relay, with the job's
// timeout and MaxConcurrentTransforms as the per-instance cap), so the
// router's least-outstanding picking spreads the batches over all
// instances.
//
// # Flow and memory
//
// Up to Slots objects are worked on at once, each by its own goroutine.
// An object is read as a stream (never whole) and cut into mini-batches;
// each batch takes one of Slots tokens before it is sent and gives it back
// once its answer is written out, so at most Slots batches and their
// answers are in memory, whatever the input size: memory is bounded by
// MaxPayload × Slots (about twice that with a DataProcessing join, whose
// batches carry their original records too). Several batches of one object are in flight at once;
// the object's writer takes their answers in input order and streams them
// into the object store's Put, which makes the output object appear only
// when it is complete. A failure or a stop aborts the Put, so no partial
// output is ever visible.
//
// # Records and DataProcessing
//
// Each object is decompressed (CompressionType) and split (SplitType) as a
// stream by package records, which also packs the mini-batches. When the
// job has DataProcessing, InputFilter is applied to each record before it
// is batched, so a batch packs filtered records; the original records of a
// batch travel with it while it is in flight, and once the model answers,
// the answer is split into one output record per input record (one line
// each for SplitType Line) and joined and filtered by package dataproc.
//
// # Faults and resume
//
// A batch that fails to connect, times out or gets a 5xx or 429 answer is
// sent again, up to MaxRetries times with exponential backoff (on any
// instance). A 4xx answer fails the job with a reason naming the object
// and its record range. After each object's output is written, Done is
// called so the control plane can checkpoint it; a resumed job is given
// the finished objects in Skip and does not read them again.
package batch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/berth-io/berth/internal/batch/dataproc"
	"github.com/berth-io/berth/internal/batch/records"
	"github.com/berth-io/berth/internal/objstore"
)

// Job is what Run needs of a transform job.
type Job struct {
	// InputBucket and InputPrefix: every object whose key starts with the
	// prefix is an input, in key order (S3DataType S3Prefix).
	InputBucket, InputPrefix string
	// OutputBucket and OutputPrefix: the output of input key K is
	// OutputPrefix/<K relative to the input prefix's folder>.out.
	OutputBucket, OutputPrefix string
	// CompressionType is None or Gzip; SplitType None, Line, RecordIO or
	// TFRecord; BatchStrategy SingleRecord or MultiRecord; AssembleWith
	// None or Line.
	CompressionType, SplitType, BatchStrategy, AssembleWith string
	// Process applies DataProcessing; nil (or an identity processor) sends
	// records and writes answers unchanged.
	Process *dataproc.Processor
	// Accept is the output objects' content type when set.
	Accept string
	// MaxPayload bounds one mini-batch, and one record, in bytes; it must
	// be positive (records treats 0 as unlimited, which would make memory
	// depend on the input's size).
	MaxPayload int64
	// Slots is how many mini-batches are in flight at once, over all
	// instances (InstanceCount × MaxConcurrentTransforms).
	Slots int
	// MaxRetries is InvocationsMaxRetries.
	MaxRetries int
	// RetryBackoff is the wait before the first retry, doubled after each
	// (default 100 ms).
	RetryBackoff time.Duration
	// Skip lists the input keys already finished by an earlier run.
	Skip map[string]bool
	// Done is called after an object's output is written whole.
	Done func(ctx context.Context, key string) error
}

// Invoker sends one mini-batch to the model and returns its answer.
type Invoker func(ctx context.Context, body []byte) ([]byte, error)

// ModelError is an answer the model gave with a status; Run retries 5xx
// and 429, and fails on other statuses.
type ModelError interface {
	error
	Status() int
}

// RetryableError marks an Invoker error worth retrying (no answer came:
// connection refused, timeout, no instance available).
type RetryableError struct{ Err error }

func (e *RetryableError) Error() string { return e.Err.Error() }
func (e *RetryableError) Unwrap() error { return e.Err }

// Failure is a job failure whose message is fit for FailureReason.
type Failure struct{ Reason string }

func (f *Failure) Error() string { return f.Reason }

// Stats counts what a run did.
type Stats struct {
	Objects, Skipped int
}

// Run processes every input object of job that is not in job.Skip. It
// returns nil when every output is written, a *Failure for a problem with
// the input or the model, or ctx's error when stopped.
func Run(ctx context.Context, store objstore.Store, job Job, invoke Invoker) (Stats, error) {
	if job.Slots < 1 {
		job.Slots = 1
	}
	if job.MaxPayload <= 0 {
		return Stats{}, errors.New("batch: MaxPayload must be positive")
	}
	if job.Process != nil && job.Process.Identity() {
		job.Process = nil
	}
	if job.RetryBackoff <= 0 {
		job.RetryBackoff = 100 * time.Millisecond
	}
	keys, err := listInputs(ctx, store, job)
	if err != nil {
		return Stats{}, err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	r := &run{job: job, store: store, invoke: invoke, tokens: make(chan struct{}, job.Slots)}
	var wg sync.WaitGroup
	work := make(chan string)
	var st Stats
	for range min(job.Slots, len(keys)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for key := range work {
				if err := r.object(ctx, key); err != nil {
					cancel(err)
				}
			}
		}()
	}
feed:
	for _, k := range keys {
		if job.Skip[k] {
			st.Skipped++
			continue
		}
		select {
		case work <- k:
			st.Objects++
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return st, err
	}
	return st, nil
}

// listInputs returns the input keys in order; no object is a failure.
func listInputs(ctx context.Context, store objstore.Store, job Job) ([]string, error) {
	src := "s3://" + job.InputBucket + "/" + job.InputPrefix
	var keys []string
	after := ""
	for {
		res, err := store.List(ctx, job.InputBucket, objstore.ListOptions{Prefix: job.InputPrefix, StartAfter: after, MaxKeys: 1000})
		if errors.Is(err, objstore.ErrNoSuchBucket) {
			return nil, &Failure{Reason: fmt.Sprintf("The input location %s does not exist: no such bucket.", src)}
		}
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", src, err)
		}
		for _, o := range res.Objects {
			if strings.HasSuffix(o.Key, "/") && o.Size == 0 {
				continue // a folder marker
			}
			keys = append(keys, o.Key)
		}
		if !res.IsTruncated || len(res.Objects) == 0 {
			break
		}
		after = res.Objects[len(res.Objects)-1].Key
	}
	if len(keys) == 0 {
		return nil, &Failure{Reason: fmt.Sprintf("No input objects found under %s.", src)}
	}
	return keys, nil
}

// OutputKey returns the output key of input key k.
func OutputKey(job Job, k string) string {
	base := job.InputPrefix[:strings.LastIndex(job.InputPrefix, "/")+1]
	rel := strings.TrimPrefix(k, base)
	out := strings.TrimSuffix(job.OutputPrefix, "/")
	if out == "" {
		return rel + ".out"
	}
	return path.Clean(out) + "/" + rel + ".out"
}

type run struct {
	job    Job
	store  objstore.Store
	invoke Invoker
	tokens chan struct{} // one per mini-batch in memory, over all objects
}

// result is one mini-batch's place in its object's output.
type result struct {
	batch  records.Batch
	inputs [][]byte // the batch's original records, when Output needs them
	done   chan struct{}
	out    []byte
	err    error
}

// object transforms one input object and writes its output whole.
func (r *run) object(ctx context.Context, key string) error {
	src := "s3://" + r.job.InputBucket + "/" + key
	body, _, err := r.store.Get(ctx, r.job.InputBucket, key)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &Failure{Reason: fmt.Sprintf("Could not read input object %s: %v", src, err)}
	}
	defer body.Close()
	dec, err := records.Decompress(body, r.job.CompressionType)
	if err != nil {
		return &Failure{Reason: fmt.Sprintf("Input object %s: %v", src, err)}
	}
	defer dec.Close()
	var rd records.Reader
	rd, err = records.NewReader(dec, r.job.SplitType, r.job.MaxPayload)
	if err != nil {
		return &Failure{Reason: fmt.Sprintf("Input object %s: %v", src, err)}
	}
	var pr0 *procReader
	if p := r.job.Process; p != nil {
		pr0 = &procReader{rd: rd, p: p, keep: p.Joins()}
		rd = pr0
	}
	b := records.NewBatcher(rd, r.job.BatchStrategy, r.job.SplitType, r.job.MaxPayload)

	octx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	pr, pw := io.Pipe()
	putErr := make(chan error, 1)
	go func() {
		_, err := r.store.Put(octx, r.job.OutputBucket, OutputKey(r.job, key), pr, objstore.PutOptions{ContentType: r.job.Accept})
		pr.CloseWithError(err) // unblock the writer if Put gave up early
		putErr <- err
	}()

	// The writer takes answers in input order and streams them out.
	order := make(chan *result, cap(r.tokens))
	writeErr := make(chan error, 1)
	go func() {
		var werr error
		for res := range order {
			if werr == nil {
				select {
				case <-res.done:
					werr = res.err
					if werr == nil {
						werr = r.write(pw, res.out)
					}
				case <-octx.Done():
					werr = context.Cause(octx)
				}
				if werr != nil {
					cancel(werr)
				}
			}
			<-r.tokens
		}
		writeErr <- werr
	}()

	var readErr error
	var inflight sync.WaitGroup
	for {
		select {
		case r.tokens <- struct{}{}:
		case <-octx.Done():
			readErr = context.Cause(octx)
		}
		if readErr != nil {
			break
		}
		bt, err := b.Next()
		if err == io.EOF {
			<-r.tokens
			break
		}
		if err != nil {
			<-r.tokens
			if reason, ok := recordReason(src, err); ok {
				readErr = &Failure{Reason: reason}
			} else if ctx.Err() != nil {
				readErr = ctx.Err()
			} else {
				readErr = &Failure{Reason: fmt.Sprintf("Could not read input object %s: %v", src, err)}
			}
			cancel(readErr)
			break
		}
		res := &result{batch: bt, done: make(chan struct{})}
		if pr0 != nil {
			res.inputs = pr0.take(bt.First, bt.Count)
		}
		order <- res
		inflight.Add(1)
		go func() {
			defer inflight.Done()
			defer close(res.done)
			res.out, res.err = r.send(octx, src, bt)
			if res.err == nil && r.job.Process != nil {
				res.out, res.err = r.output(src, res)
			}
		}()
	}
	close(order)
	werr := <-writeErr
	inflight.Wait()
	if readErr == nil && werr == nil {
		pw.Close()
	} else {
		pw.CloseWithError(errors.Join(readErr, werr))
	}
	perr := <-putErr
	switch {
	case readErr != nil:
		return readErr
	case werr != nil:
		return werr
	case perr != nil:
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &Failure{Reason: fmt.Sprintf("Could not write the output of %s: %v", src, perr)}
	}
	if r.job.Done != nil {
		// The output is written: record it even if the job is being
		// stopped this instant, so a resumed run does not redo it.
		if err := r.job.Done(context.WithoutCancel(ctx), key); err != nil {
			return fmt.Errorf("checkpoint %s: %w", src, err)
		}
	}
	return nil
}

// write appends one answer to the output, with a newline after it when
// AssembleWith is Line and it does not end in one already.
func (r *run) write(w io.Writer, out []byte) error {
	if _, err := w.Write(out); err != nil {
		return err
	}
	if r.job.AssembleWith == "Line" && (len(out) == 0 || out[len(out)-1] != '\n') {
		_, err := w.Write([]byte{'\n'})
		return err
	}
	return nil
}

// send invokes one mini-batch, retrying what may succeed on another try.
func (r *run) send(ctx context.Context, src string, bt records.Batch) ([]byte, error) {
	wait := r.job.RetryBackoff
	for attempt := 0; ; attempt++ {
		out, err := r.invoke(ctx, bt.Body)
		if err == nil {
			return out, nil
		}
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		retry := false
		var me ModelError
		var re *RetryableError
		switch {
		case errors.As(err, &me):
			retry = me.Status() >= 500 || me.Status() == 429 || me.Status() == 0
		case errors.As(err, &re):
			retry = true
		}
		if !retry || attempt >= r.job.MaxRetries {
			return nil, &Failure{Reason: fmt.Sprintf("Input object %s, %s: %v", src, recordRange(bt), err)}
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
		wait = min(2*wait, 10*time.Second)
	}
}

// recordRange names a batch's records, counted from 1 (for SplitType
// Line, record n is line n).
func recordRange(bt records.Batch) string {
	if bt.Count == 1 {
		return fmt.Sprintf("record %d", bt.First+1)
	}
	return fmt.Sprintf("records %d-%d", bt.First+1, bt.First+bt.Count)
}
