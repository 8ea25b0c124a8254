// Package sqsfake is a test-only SQS endpoint that speaks the JSON protocol of the
// current aws-sdk-go-v2/service/sqs (POST, X-Amz-Target: AmazonSQS.<Action>,
// application/x-amz-json-1.0), for the one call the function makes: SendMessage, which
// queues continuation messages. No installable SQS emulator speaks this protocol (the
// ones that exist speak the older query protocol), so tests and the end-to-end harness
// use this. It listens on 127.0.0.1 only.
package sqsfake

import (
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
)

// Message is one message sent to the fake.
type Message struct {
	ID       string
	QueueURL string
	Body     string
}

// Server holds the messages sent to it, by queue URL.
type Server struct {
	srv    *httptest.Server
	mu     sync.Mutex
	queues map[string]bool
	sent   []Message
	nextID atomic.Uint64
	// Fail, when set, makes every SendMessage fail with an internal error.
	Fail atomic.Bool
	// Deliver, when set before the first request, receives each sent message instead of
	// the server keeping it, and returns its message id: the end-to-end harness hands
	// continuation messages to its simulated queue this way.
	Deliver func(queueURL, body string) (id string)
}

// New starts a server on 127.0.0.1 with the given queue names. Close it when done.
func New(queueNames ...string) *Server {
	s := &Server{queues: map[string]bool{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	for _, name := range queueNames {
		s.queues[s.QueueURL(name)] = true
	}
	return s
}

// URL is the endpoint to give the SDK (BaseEndpoint).
func (s *Server) URL() string { return s.srv.URL }

// QueueURL is the URL of queue name on this server, in the AWS shape.
func (s *Server) QueueURL(name string) string { return s.srv.URL + "/123456789012/" + name }

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// Take returns and forgets the messages sent to queueURL, oldest first.
func (s *Server) Take(queueURL string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out, keep []Message
	for _, m := range s.sent {
		if m.QueueURL == queueURL {
			out = append(out, m)
		} else {
			keep = append(keep, m)
		}
	}
	s.sent = keep
	return out
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	target := r.Header.Get("X-Amz-Target")
	if r.Method != http.MethodPost || !strings.HasPrefix(target, "AmazonSQS.") {
		writeError(w, http.StatusBadRequest, "InvalidAction", "want POST with X-Amz-Target: AmazonSQS.<Action> (JSON protocol)")
		return
	}
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-amz-json-1.0") {
		writeError(w, http.StatusBadRequest, "InvalidParameterValue", "want Content-Type application/x-amz-json-1.0")
		return
	}
	if !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 ") {
		writeError(w, http.StatusForbidden, "MissingAuthenticationToken", "request is not signed with SigV4")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		writeError(w, http.StatusBadRequest, "InvalidParameterValue", err.Error())
		return
	}
	switch action := strings.TrimPrefix(target, "AmazonSQS."); action {
	case "SendMessage":
		s.sendMessage(w, body)
	default:
		writeError(w, http.StatusBadRequest, "InvalidAction", "action "+action+" is not served by this fake")
	}
}

func (s *Server) sendMessage(w http.ResponseWriter, body []byte) {
	var in struct {
		QueueUrl    string
		MessageBody string
	}
	if err := json.Unmarshal(body, &in); err != nil {
		writeError(w, http.StatusBadRequest, "InvalidParameterValue", err.Error())
		return
	}
	if s.Fail.Load() {
		writeError(w, http.StatusInternalServerError, "InternalError", "injected failure")
		return
	}
	s.mu.Lock()
	known := s.queues[in.QueueUrl]
	s.mu.Unlock()
	if !known {
		writeError(w, http.StatusBadRequest, "QueueDoesNotExist", "The specified queue does not exist.")
		return
	}
	if in.MessageBody == "" || len(in.MessageBody) > 256<<10 {
		writeError(w, http.StatusBadRequest, "InvalidParameterValue", "message body must be 1 byte to 256 KiB")
		return
	}
	var id string
	if s.Deliver != nil {
		id = s.Deliver(in.QueueUrl, in.MessageBody)
	} else {
		id = fmt.Sprintf("00000000-0000-4000-8000-%012d", s.nextID.Add(1))
		s.mu.Lock()
		s.sent = append(s.sent, Message{ID: id, QueueURL: in.QueueUrl, Body: in.MessageBody})
		s.mu.Unlock()
	}
	sum := md5.Sum([]byte(in.MessageBody))
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	json.NewEncoder(w).Encode(map[string]string{"MessageId": id, "MD5OfMessageBody": hex.EncodeToString(sum[:])})
}

// writeError answers in the JSON protocol's error shape.
func writeError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	w.Header().Set("x-amzn-query-error", "AWS.SimpleQueueService."+code+";Sender")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"__type": "com.amazonaws.sqs#" + code, "message": message})
}
