package frame

import (
	"errors"
	"reflect"
	"testing"
)

// fuzzLimits are small so that the fuzzer reaches every limit with short inputs.
var fuzzLimits = Limits{MaxFrameBytes: 512, MaxHeaders: 8, MaxHeaderBytes: 64}

// FuzzParser checks, for any input: no panic; the buffer within the limits after every Feed;
// feeding in three pieces gives what feeding at once gives; and wherever go-stomp's Reader is a
// fair reference (see oracleApplies), we agree with it.
func FuzzParser(f *testing.F) {
	for _, tc := range parseCases {
		f.Add([]byte(tc.in), uint16(len(tc.in)/3), uint16(len(tc.in)/2))
	}
	for _, in := range oracleCorpus {
		if len(in) <= 1024 { // long seeds make every mutation, and its minimization, slow
			f.Add([]byte(in), uint16(1), uint16(len(in)-1))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, cut1, cut2 uint16) {
		i, j := int(cut1)%(len(data)+1), int(cut2)%(len(data)+1)
		if i > j {
			i, j = j, i
		}
		whole, wholeErr := feedChunks(NewParser(fuzzLimits), data)
		p := NewParser(fuzzLimits)
		var split []event
		var splitErr error
		emit := func(f *Frame) error {
			split = append(split, snapshot(f))
			return nil
		}
		for _, piece := range [][]byte{data[:i], data[i:j], data[j:]} {
			splitErr = p.Feed(append([]byte(nil), piece...), emit)
			if p.Buffered() > fuzzLimits.MaxFrameBytes+1 || cap(p.buf) > fuzzLimits.MaxFrameBytes+1 {
				t.Fatalf("buffer %d bytes, capacity %d, over the limit", p.Buffered(), cap(p.buf))
			}
			if splitErr != nil {
				break
			}
		}
		if !reflect.DeepEqual(split, whole) || sentinel(splitErr) != sentinel(wholeErr) {
			t.Fatalf("split at %d, %d:\n got %v (%v)\nwant %v (%v)", i, j, split, splitErr, whole, wholeErr)
		}

		if oracleApplies(data) {
			compareWithGoStomp(t, data)
		}
	})
}

// sentinel returns the package error behind err, or err itself.
func sentinel(err error) error {
	var pe *ParseError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
