package runtime

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"

	"github.com/berth-io/berth/internal/router"
)

// The event-stream frames of InvokeEndpointWithResponseStream. PayloadPart's
// Bytes member is its event payload, so a frame carries the model's bytes
// as they are; exceptions carry a JSON body.
var (
	payloadHeaders = eventstream.Headers{
		{Name: ":event-type", Value: eventstream.StringValue("PayloadPart")},
		{Name: ":message-type", Value: eventstream.StringValue("event")},
		{Name: ":content-type", Value: eventstream.StringValue("application/octet-stream")},
	}
	modelStreamErrorHeaders = eventstream.Headers{
		{Name: ":exception-type", Value: eventstream.StringValue("ModelStreamError")},
		{Name: ":message-type", Value: eventstream.StringValue("exception")},
		{Name: ":content-type", Value: eventstream.StringValue("application/json")},
	}
	internalStreamFailureHeaders = eventstream.Headers{
		{Name: ":exception-type", Value: eventstream.StringValue("InternalStreamFailure")},
		{Name: ":message-type", Value: eventstream.StringValue("exception")},
		{Name: ":content-type", Value: eventstream.StringValue("application/json")},
	}
)

// ModelStreamError codes, as SageMaker documents them.
const (
	streamTimeout = "ModelInvocationTimeExceeded"
	streamBroken  = "StreamBroken"
)

// relayStream answers InvokeEndpointWithResponseStream: each read of the
// model's answer becomes one PayloadPart frame, flushed at once; a failure
// ends the stream with a ModelStreamError (or InternalStreamFailure)
// frame.
func (h *Handler) relayStream(w http.ResponseWriter, rc *http.ResponseController, s *router.Stream) {
	hd := w.Header()
	hd[hdrContentType] = []string{"application/vnd.amazon.eventstream"}
	hd[hdrInvokedVariant] = []string{s.Variant}
	if s.ContentType != "" {
		hd[hdrStreamType] = []string{s.ContentType}
	}
	if s.CustomAttributes != "" {
		hd[hdrCustomAttributes] = []string{s.CustomAttributes}
	}
	w.WriteHeader(http.StatusOK)
	if rc.Flush() != nil {
		return
	}
	enc := eventstream.NewEncoder()
	cb := router.GetCopyBuf()
	defer router.PutCopyBuf(cb)
	buf := *cb
	for {
		n, err := s.Read(buf)
		if n > 0 {
			if enc.Encode(w, eventstream.Message{Headers: payloadHeaders, Payload: buf[:n]}) != nil || rc.Flush() != nil {
				return // the client went away
			}
		}
		if err == io.EOF {
			return
		}
		if err != nil {
			h.streamError(w, rc, enc, err)
			return
		}
	}
}

func (h *Handler) streamError(w http.ResponseWriter, rc *http.ResponseController, enc *eventstream.Encoder, err error) {
	var me *router.ModelError
	var msg eventstream.Message
	if errors.As(err, &me) {
		code := streamBroken
		if me.Timeout {
			code = streamTimeout
		}
		msg.Headers = modelStreamErrorHeaders
		msg.Payload, _ = json.Marshal(struct {
			Message   string `json:"Message"`
			ErrorCode string `json:"ErrorCode"`
		}{me.OriginalBody, code})
	} else {
		h.logger.Warn("response stream failed", "err", err)
		msg.Headers = internalStreamFailureHeaders
		msg.Payload, _ = json.Marshal(struct {
			Message string `json:"Message"`
		}{"The stream processing failed; try your request again."})
	}
	if enc.Encode(w, msg) == nil {
		rc.Flush()
	}
}
