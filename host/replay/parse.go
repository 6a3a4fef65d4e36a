package replay

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// maxLine bounds one input line; a head line longer than this is certainly not a captured response.
const maxLine = 1 << 20

// ResponseHead is one HTTP response head: status line and header fields.
type ResponseHead struct {
	Proto   string      // as read, e.g. "HTTP/1.1"; output always says HTTP/1.1
	Status  int         // 100–999
	Reason  string      // may be empty
	Headers [][2]string // in input order, names as written
	Line    int         // 1-based line number of the status line (0 for heads not read from input)
}

// RequestHead is the request each response is replayed against.
type RequestHead struct {
	Method  string
	Target  string // origin-form ("/chat?x=1") or absolute-form ("https://chat.example.com/chat")
	Proto   string
	Headers [][2]string
}

// DefaultRequest is `GET / HTTP/1.1` with `Host: localhost`.
func DefaultRequest() RequestHead {
	return RequestHead{Method: "GET", Target: "/", Proto: "HTTP/1.1", Headers: [][2]string{{"Host", "localhost"}}}
}

// lineReader yields lines without their CRLF or LF ending, counting them.
type lineReader struct {
	sc   *bufio.Scanner
	line int
}

func newLineReader(r io.Reader) *lineReader {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxLine)
	return &lineReader{sc: sc}
}

// next returns the next line; ok is false at the end of input. A line may not hold CR (other than its ending) or NUL:
// both are forbidden in HTTP/1 heads and would let a field smuggle a second one.
func (lr *lineReader) next() (line string, ok bool, err error) {
	if !lr.sc.Scan() {
		if err := lr.sc.Err(); err != nil {
			if errors.Is(err, bufio.ErrTooLong) {
				return "", false, fmt.Errorf("line %d: longer than %d bytes", lr.line+1, maxLine)
			}
			return "", false, err
		}
		return "", false, nil
	}
	lr.line++
	line = strings.TrimSuffix(lr.sc.Text(), "\r")
	if i := strings.IndexAny(line, "\r\x00"); i >= 0 {
		return "", false, fmt.Errorf("line %d: stray %q in a head", lr.line, line[i])
	}
	return line, true, nil
}

// ParseResponses reads one or more response heads. Each head is a status line followed by header lines and ends with
// an empty line (CRLF or LF) or the end of input; blank lines between heads are skipped. Errors name the head number
// and the line: "replay: input: head 2, line 9: …".
func ParseResponses(r io.Reader) ([]ResponseHead, error) {
	lr := newLineReader(r)
	var heads []ResponseHead
	for {
		h, err := readResponseHead(lr, len(heads)+1)
		if err != nil {
			return nil, fmt.Errorf("replay: input: %w", err)
		}
		if h == nil {
			break
		}
		heads = append(heads, *h)
	}
	if len(heads) == 0 {
		return nil, errors.New("replay: input: no response head (want a status line such as \"HTTP/1.1 200 OK\")")
	}
	return heads, nil
}

// readResponseHead reads one head, or returns nil at the end of input.
func readResponseHead(lr *lineReader, n int) (*ResponseHead, error) {
	var first string
	for {
		line, ok, err := lr.next()
		if err != nil {
			return nil, fmt.Errorf("head %d, %w", n, err)
		}
		if !ok {
			return nil, nil
		}
		if strings.TrimSpace(line) != "" {
			first = line
			break
		}
	}
	h := &ResponseHead{Line: lr.line}
	var err error
	if h.Proto, h.Status, h.Reason, err = parseStatusLine(first); err != nil {
		return nil, fmt.Errorf("head %d, line %d: %w", n, lr.line, err)
	}
	if h.Headers, err = readFields(lr); err != nil {
		return nil, fmt.Errorf("head %d, %w", n, err)
	}
	return h, nil
}

func parseStatusLine(line string) (proto string, status int, reason string, err error) {
	proto, rest, ok := strings.Cut(line, " ")
	if !ok {
		return "", 0, "", fmt.Errorf("status line %q: want \"HTTP/1.1 <code> <reason>\"", line)
	}
	switch proto {
	case "HTTP/1.0", "HTTP/1.1", "HTTP/2", "HTTP/2.0", "HTTP/3":
		// HTTP/2 and HTTP/3 heads as curl prints them are accepted too.
	default:
		return "", 0, "", fmt.Errorf("status line %q: unknown protocol %q (want HTTP/1.0 or HTTP/1.1)", line, proto)
	}
	code, reason, _ := strings.Cut(rest, " ")
	if len(code) != 3 || code[0] < '1' || code[0] > '9' {
		return "", 0, "", fmt.Errorf("status line %q: status code %q is not three digits", line, code)
	}
	status, err = strconv.Atoi(code)
	if err != nil {
		return "", 0, "", fmt.Errorf("status line %q: status code %q is not three digits", line, code)
	}
	return proto, status, strings.TrimSpace(reason), nil
}

// readFields reads header lines up to an empty line or the end of input.
func readFields(lr *lineReader) ([][2]string, error) {
	var fields [][2]string
	for {
		line, ok, err := lr.next()
		if err != nil {
			return nil, err
		}
		if !ok || line == "" {
			return fields, nil
		}
		if line[0] == ' ' || line[0] == '\t' {
			return nil, fmt.Errorf("line %d: obsolete line folding (obs-fold) is not supported: join %q to the "+
				"previous header line", lr.line, strings.TrimSpace(line))
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("line %d: header line %q has no colon", lr.line, line)
		}
		if err := checkFieldName(name); err != nil {
			return nil, fmt.Errorf("line %d: %w", lr.line, err)
		}
		fields = append(fields, [2]string{name, strings.Trim(value, " \t")})
	}
}

func checkFieldName(name string) error {
	if name == "" {
		return errors.New("empty header name")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c == ' ' || c == '\t' {
			return fmt.Errorf("header name %q: whitespace before the colon is not allowed", name)
		}
		if !isTokenChar(c) {
			return fmt.Errorf("header name %q: invalid character %q", name, c)
		}
	}
	return nil
}

func isTokenChar(c byte) bool {
	if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// ParseRequest reads a request head: a request line ("GET /path HTTP/1.1") and header lines, ending at an empty line
// or the end of input (anything after the empty line, such as a body, is ignored). Errors name the line.
func ParseRequest(r io.Reader) (RequestHead, error) {
	lr := newLineReader(r)
	var first string
	for first == "" {
		line, ok, err := lr.next()
		if err != nil {
			return RequestHead{}, fmt.Errorf("replay: request: %w", err)
		}
		if !ok {
			return RequestHead{}, errors.New("replay: request: empty (want a request line such as \"GET / HTTP/1.1\")")
		}
		first = strings.TrimSpace(line)
	}
	parts := strings.Split(first, " ")
	if len(parts) != 3 {
		return RequestHead{}, fmt.Errorf("replay: request: line %d: request line %q: want \"<method> <target> HTTP/1.1\"",
			lr.line, first)
	}
	req := RequestHead{Method: parts[0], Target: parts[1], Proto: parts[2]}
	if err := checkFieldName(req.Method); err != nil {
		return RequestHead{}, fmt.Errorf("replay: request: line %d: method %q is not a token", lr.line, req.Method)
	}
	switch req.Proto {
	case "HTTP/1.0", "HTTP/1.1":
	default:
		return RequestHead{}, fmt.Errorf("replay: request: line %d: protocol %q (want HTTP/1.0 or HTTP/1.1)",
			lr.line, req.Proto)
	}
	if _, _, _, err := requestTarget(req.Target); err != nil {
		return RequestHead{}, fmt.Errorf("replay: request: line %d: %w", lr.line, err)
	}
	var err error
	if req.Headers, err = readFields(lr); err != nil {
		return RequestHead{}, fmt.Errorf("replay: request: %w", err)
	}
	hosts := 0
	for _, kv := range req.Headers {
		if strings.EqualFold(kv[0], "host") {
			hosts++
		}
	}
	if hosts > 1 {
		return RequestHead{}, errors.New("replay: request: more than one Host header")
	}
	return req, nil
}
