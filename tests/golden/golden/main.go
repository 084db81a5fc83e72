// Command golden turns test cases into golden log lines written by the real
// logrus formatters running a verbatim re-statement of the original
// events-audit handler (HandleMessage below). No NATS server is involved.
//
// Build in GOPATH mode (see ../regen.sh): it imports only the standard
// library, github.com/sirupsen/logrus and github.com/nats-io/nats.go.
//
// Input (stdin), JSON Lines, one case per line (blank lines are skipped,
// unknown keys are rejected):
//
//	{"name": "unique label", "subject": "events.x",
//	 "reply": "$JS.ACK.EVENTS.durable.1.42.42.1736591400123456789.7",
//	 "data_b64": "<standard base64 of the payload>",
//	 "now_unix_nano": 1736591400123456789, "tz": "<IANA zone name>"}
//
// Output (stdout), JSON Lines, one line per case, same order:
//
//	{"name": ..., "json": "<line>", "text": "<line>", "color": "<line>"}
//
// Each <line> is exactly the bytes logrus wrote for the handler's single
// entry minus the one trailing "\n" logrus always appends. The tool fails
// (exit 1) if that newline is missing, if the entry contains another newline,
// or if the bytes are not valid UTF-8 (they could not be stored losslessly
// in a JSON string; none of the three formatters can produce that). The
// output encoder does not HTML-escape, so the stored strings decode to the
// exact bytes. encoding/json escapes are this toolchain's native ones
// (Go >= 1.22 writes \b and \f).
//
// Per case, the process-wide time.Local is set to the case's zone and the
// entry time is t = time.Unix(0, now_unix_nano), pinned with
// logger.WithTime(t): "time" and "js_timestamp" are rendered in that zone,
// exactly like a process started with TZ=<tz>.
//
// Formatters (each a fresh logrus.New() at DebugLevel writing to a
// bytes.Buffer, i.e. not a terminal):
//
//	json:  &logrus.JSONFormatter{TimestampFormat: "02.01.2006 15:04:05.000"}
//	text:  &logrus.TextFormatter{TimestampFormat: ..., FullTimestamp: true}
//	color: the same with ForceColors: true
//
// -version prints runtime.Version() and exits.
package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/sirupsen/logrus"
)

// ---- the original handler (the contract; keep verbatim) -------------------

type Event struct {
	ID        string                 `json:"id"`
	Type      string                 `json:"type"`
	Source    string                 `json:"source"`
	Timestamp time.Time              `json:"timestamp"`
	Data      map[string]interface{} `json:"data"`
}

func HandleMessage(log logrus.FieldLogger, msg *nats.Msg) error {
	fields := logrus.Fields{"subject": msg.Subject, "data_size": len(msg.Data), "reply": msg.Reply}
	if meta, err := msg.Metadata(); err == nil {
		fields["stream"] = meta.Stream
		fields["consumer"] = meta.Consumer
		fields["sequence"] = meta.Sequence.Stream
		fields["delivered"] = meta.NumDelivered
		fields["pending"] = meta.NumPending
		fields["js_timestamp"] = meta.Timestamp.Format(time.RFC3339)
	}
	var event Event
	if err := json.Unmarshal(msg.Data, &event); err != nil {
		fields["raw_data"] = string(msg.Data)
		log.WithFields(fields).Info("Received raw event")
		return nil
	}
	fields["event_id"] = event.ID
	fields["event_type"] = event.Type
	fields["source"] = event.Source
	fields["event_timestamp"] = event.Timestamp.Format(time.RFC3339)
	fields["event_data"] = event.Data
	log.WithFields(fields).Info("Received structured event")
	return nil
}

// ---- golden generator ------------------------------------------------------

const timestampFormat = "02.01.2006 15:04:05.000"

type goldenCase struct {
	Name        string `json:"name"`
	Subject     string `json:"subject"`
	Reply       string `json:"reply"`
	DataB64     string `json:"data_b64"`
	NowUnixNano *int64 `json:"now_unix_nano"`
	TZ          string `json:"tz"`
}

type goldenLine struct {
	Name  string `json:"name"`
	JSON  string `json:"json"`
	Text  string `json:"text"`
	Color string `json:"color"`
}

// render runs the handler once with formatter f and returns the bytes logrus
// wrote, minus the trailing newline.
func render(f logrus.Formatter, t time.Time, msg *nats.Msg) (string, error) {
	var buf bytes.Buffer
	logger := logrus.New()
	logger.SetOutput(&buf)
	logger.SetFormatter(f)
	logger.SetLevel(logrus.DebugLevel)
	if err := HandleMessage(logger.WithTime(t), msg); err != nil {
		return "", err
	}
	out := buf.Bytes()
	if len(out) == 0 || out[len(out)-1] != '\n' {
		return "", fmt.Errorf("logrus output does not end with a newline: %q", out)
	}
	out = out[:len(out)-1]
	if bytes.IndexByte(out, '\n') >= 0 {
		return "", fmt.Errorf("logrus output spans several lines: %q", out)
	}
	if !utf8.Valid(out) {
		return "", fmt.Errorf("logrus output is not valid UTF-8: %q", out)
	}
	return string(out), nil
}

func run(in io.Reader, out io.Writer) error {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 0, 1<<20), 256<<20)
	w := bufio.NewWriter(out)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)

	formatters := []struct {
		name string
		f    logrus.Formatter
		dst  func(*goldenLine) *string
	}{
		{"json", &logrus.JSONFormatter{TimestampFormat: timestampFormat},
			func(g *goldenLine) *string { return &g.JSON }},
		{"text", &logrus.TextFormatter{TimestampFormat: timestampFormat, FullTimestamp: true},
			func(g *goldenLine) *string { return &g.Text }},
		{"color", &logrus.TextFormatter{TimestampFormat: timestampFormat, FullTimestamp: true, ForceColors: true},
			func(g *goldenLine) *string { return &g.Color }},
	}

	lineNo := 0
	for sc.Scan() {
		lineNo++
		raw := bytes.TrimSpace(sc.Bytes())
		if len(raw) == 0 {
			continue
		}
		var c goldenCase
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			return fmt.Errorf("line %d: %v", lineNo, err)
		}
		if c.NowUnixNano == nil {
			return fmt.Errorf("line %d: now_unix_nano is required", lineNo)
		}
		data, err := base64.StdEncoding.DecodeString(c.DataB64)
		if err != nil {
			return fmt.Errorf("line %d: data_b64: %v", lineNo, err)
		}
		tz := c.TZ
		if tz == "" {
			tz = "UTC"
		}
		loc, err := time.LoadLocation(tz)
		if err != nil {
			return fmt.Errorf("line %d: tz %q: %v", lineNo, tz, err)
		}
		time.Local = loc
		t := time.Unix(0, *c.NowUnixNano) // location: time.Local

		// Sub must be set: Msg.Metadata() refuses unbound messages, and in
		// the service every message comes from a subscription.
		msg := &nats.Msg{Subject: c.Subject, Reply: c.Reply, Data: data, Sub: &nats.Subscription{}}

		g := goldenLine{Name: c.Name}
		for _, f := range formatters {
			s, err := render(f.f, t, msg)
			if err != nil {
				return fmt.Errorf("line %d (%s) %q: %v", lineNo, f.name, c.Name, err)
			}
			*f.dst(&g) = s
		}
		if err := enc.Encode(&g); err != nil {
			return fmt.Errorf("line %d: encode: %v", lineNo, err)
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return w.Flush()
}

func main() {
	version := flag.Bool("version", false, "print the Go version this tool was built with and exit")
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(),
			"usage: golden [-version] < cases.jsonl > golden.jsonl")
		flag.PrintDefaults()
	}
	flag.Parse()
	if *version {
		fmt.Println(runtime.Version())
		return
	}
	if flag.NArg() != 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "golden:", err)
		os.Exit(1)
	}
}
