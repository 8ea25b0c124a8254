package flowlog

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestFixtures reads each testdata object, through gzip as the Lambda does, counts
// what comes out, and checks every line against the reference parser.
func TestFixtures(t *testing.T) {
	tests := []struct {
		file      string
		opts      Options
		format    string // the format the Reader must settle on
		records   int    // StatusOK
		noData    int
		skipData  int
		malformed []int64
	}{
		{"default.log", Options{}, DefaultHeader, 8, 1, 1, nil},
		{"noheader.log", Options{}, DefaultHeader, 4, 1, 0, nil},
		{"custom-v3.log", Options{}, hdrV3, 5, 1, 0, nil},
		{"custom-v3.log", Options{PreferPacketAddresses: true}, hdrV3, 5, 1, 0, nil},
		{"custom-v5.log", Options{}, "", 5, 1, 1, nil},
		{"custom-v5.log", Options{PreferPacketAddresses: true}, "", 5, 1, 1, nil},
		{"malformed.log", Options{}, DefaultHeader, 4, 1, 0, []int64{3, 4, 6, 7, 8, 10, 11, 12, 13, 14, 15, 18}},
		{"ipv6.log", Options{}, DefaultHeader, 5, 0, 0, []int64{5, 6, 8}},
	}
	for _, tt := range tests {
		name := tt.file
		if tt.opts.PreferPacketAddresses {
			name += "/pkt"
		}
		t.Run(name, func(t *testing.T) {
			text, err := os.ReadFile(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			var gz bytes.Buffer
			zw := gzip.NewWriter(&gz)
			zw.Write(text)
			zw.Close()
			zr, err := gzip.NewReader(&gz)
			if err != nil {
				t.Fatal(err)
			}

			textLines := strings.Split(string(text), "\n")
			var cols []Field
			r := NewReader(zr, tt.opts)
			var rec Record
			var records, noData, skipData int
			var malformed []int64
			for {
				err := r.Next(&rec)
				if err == io.EOF {
					break
				}
				if cols == nil {
					header := r.Format().String()
					if tt.format != "" && header != tt.format {
						t.Errorf("format %q, want %q", header, tt.format)
					}
					cols = refColumns(header)
				}
				var le *LineError
				switch {
				case errors.As(err, &le):
					malformed = append(malformed, le.Line)
					checkAgainstRef(t, cols, strings.TrimRight(textLines[le.Line-1], "\r"), le.Line, tt.opts.PreferPacketAddresses, nil, true)
					continue
				case err != nil:
					t.Fatal(err)
				}
				switch rec.Status {
				case StatusOK:
					records++
				case StatusNoData:
					noData++
				case StatusSkipData:
					skipData++
				}
				checkAgainstRef(t, cols, strings.TrimRight(textLines[rec.Line-1], "\r"), rec.Line, tt.opts.PreferPacketAddresses, &rec, false)
			}
			if records != tt.records || noData != tt.noData || skipData != tt.skipData {
				t.Errorf("records %d, NODATA %d, SKIPDATA %d; want %d, %d, %d", records, noData, skipData, tt.records, tt.noData, tt.skipData)
			}
			if !slices.Equal(malformed, tt.malformed) {
				t.Errorf("malformed lines %v, want %v", malformed, tt.malformed)
			}
			if got, want := r.LinesRead(), int64(len(strings.Split(strings.TrimSuffix(string(text), "\n"), "\n"))); got != want {
				t.Errorf("LinesRead() = %d, want %d", got, want)
			}
		})
	}
}

// TestFixturesPktAddresses spells out what PreferPacketAddresses changes in custom-v3.log.
func TestFixturesPktAddresses(t *testing.T) {
	srcs := func(opts Options) []string {
		f, err := os.Open(filepath.Join("testdata", "custom-v3.log"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		r := NewReader(f, opts)
		var rec Record
		var out []string
		for r.Next(&rec) == nil {
			if rec.Status == StatusOK {
				out = append(out, rec.Src.String()+">"+rec.Dst.String())
			}
		}
		return out
	}
	off := srcs(Options{})
	on := srcs(Options{PreferPacketAddresses: true})
	wantOff := []string{"10.0.1.5>10.0.2.7", "10.0.0.200>10.0.1.5", "10.0.0.200>10.0.3.4", "2600:1f18:abcd:1::10>2600:1f18:abcd:2::20", "10.0.1.5>10.0.0.2"}
	wantOn := []string{"10.0.1.5>10.0.2.7", "203.0.113.7>10.0.1.5", "10.0.0.200>10.0.3.4", "2600:1f18:abcd:1::10>2600:1f18:abcd:2::20", "10.0.1.5>10.0.0.2"}
	if !slices.Equal(off, wantOff) {
		t.Errorf("not preferred: %q", off)
	}
	if !slices.Equal(on, wantOn) {
		t.Errorf("preferred: %q", on)
	}
}
