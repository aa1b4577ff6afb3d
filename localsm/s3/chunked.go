package s3

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// chunkReader reads the payload of an aws-chunked body: "SIZE[;chunk-signature=...]\r\n DATA
// \r\n" chunks, a zero-size chunk, then trailer lines (checksums) up to an empty line. Trailing
// checksums are not verified: signatures and checksums are accepted as they come.
type chunkReader struct {
	r      *bufio.Reader
	remain int64
	done   bool
	err    error
}

func newLineReader(r io.Reader) *bufio.Reader { return bufio.NewReaderSize(r, 64<<10) }

func (c *chunkReader) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	for c.remain == 0 {
		if c.done {
			return 0, io.EOF
		}
		if err := c.nextChunk(); err != nil {
			c.err = err
			return 0, err
		}
	}
	if int64(len(p)) > c.remain {
		p = p[:c.remain]
	}
	n, err := c.r.Read(p)
	c.remain -= int64(n)
	if c.remain == 0 && err == nil {
		err = c.expectCRLF()
	}
	if err == io.EOF && c.remain > 0 {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		c.err = err
	}
	return n, err
}

func (c *chunkReader) nextChunk() error {
	line, err := c.line()
	if err != nil {
		return err
	}
	sizeHex, _, _ := strings.Cut(line, ";")
	size, err := strconv.ParseInt(strings.TrimSpace(sizeHex), 16, 64)
	if err != nil || size < 0 {
		return fmt.Errorf("aws-chunked body: bad chunk header %q", line)
	}
	if size == 0 {
		// Trailers, then an empty line.
		for {
			l, err := c.line()
			if err == io.EOF {
				break
			}
			if err != nil {
				return err
			}
			if l == "" {
				break
			}
		}
		c.done = true
		return nil
	}
	c.remain = size
	return nil
}

func (c *chunkReader) line() (string, error) {
	l, err := c.r.ReadString('\n')
	if err != nil {
		if err == io.EOF && l == "" {
			return "", io.EOF
		}
		if err == io.EOF {
			return "", io.ErrUnexpectedEOF
		}
		return "", err
	}
	if len(l) > 4096 {
		return "", errors.New("aws-chunked body: header line too long")
	}
	return strings.TrimRight(l, "\r\n"), nil
}

func (c *chunkReader) expectCRLF() error {
	l, err := c.line()
	if err != nil {
		return err
	}
	if l != "" {
		return fmt.Errorf("aws-chunked body: expected end of chunk, found %q", l)
	}
	return nil
}
