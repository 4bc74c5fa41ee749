package machine

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/bootcommand"
)

type recordedKeys struct{ chords [][]uint32 }

func (r *recordedKeys) SendKeys(_ context.Context, _ string, codes []uint32, _ time.Duration) error {
	r.chords = append(r.chords, append([]uint32(nil), codes...))
	return nil
}

// Boot commands become chords of Linux key codes: shifted characters hold
// shift, <xOn>/<xOff> hold a key across what follows.
func TestBootCommandKeys(t *testing.T) {
	for _, tc := range []struct {
		command string
		want    [][]uint32
	}{
		{"ab", [][]uint32{{30}, {48}}},
		{"A:", [][]uint32{{keyLeftShift, 30}, {keyLeftShift, 39}}},
		{"1 /<enter>", [][]uint32{{2}, {keySpace}, {53}, {keyEnter}}},
		{"<esc><f1><f10><f12><tab><bs><del>", [][]uint32{{keyEsc}, {59}, {68}, {keyF12}, {keyTab}, {keyBackspace}, {keyDelete}}},
		{"<up><down><left><right><home><end><pageUp><pageDown><insert>", [][]uint32{{keyUp}, {keyDown}, {keyLeft}, {keyRight}, {keyHome}, {keyEnd}, {keyPageUp}, {keyPageDown}, {keyInsert}}},
		{"<leftCtrlOn>c<leftCtrlOff>x", [][]uint32{{keyLeftCtrl, 46}, {45}}},
		{"<leftAltOn><f2><leftAltOff>", [][]uint32{{keyLeftAlt, 60}}},
		{"~|\"", [][]uint32{{keyLeftShift, 41}, {keyLeftShift, 43}, {keyLeftShift, 40}}},
	} {
		t.Run(tc.command, func(t *testing.T) {
			rec := &recordedKeys{}
			seq, err := bootcommand.GenerateExpressionSequence(tc.command)
			if err != nil {
				t.Fatal(err)
			}
			if err := seq.Do(context.Background(), &keyDriver{ctx: context.Background(), send: rec, machine: "m"}); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(rec.chords, tc.want) {
				t.Errorf("got %v, want %v", rec.chords, tc.want)
			}
		})
	}
}

func TestBootCommandUnknownKey(t *testing.T) {
	d := &keyDriver{ctx: context.Background(), send: &recordedKeys{}, machine: "m"}
	if err := d.SendKey('é', bootcommand.KeyPress); err == nil {
		t.Error("é: no error")
	}
	if err := d.SendSpecial("hyper", bootcommand.KeyPress); err == nil {
		t.Error("<hyper>: no error")
	}
}

// Every printable ASCII character has a key.
func TestEveryASCIICharacterTypes(t *testing.T) {
	for r := rune(0x20); r < 0x7f; r++ {
		if _, ok := keyOf[r]; !ok {
			t.Errorf("%s has no key", fmt.Sprintf("%q", r))
		}
	}
}
