package machine

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/bootcommand"
)

// Linux input key codes (linux/input-event-codes.h): what libvirt's
// send-key takes in its "linux" code set, whatever the guest's keyboard.
const (
	keyEsc        = 1
	keyBackspace  = 14
	keyTab        = 15
	keyEnter      = 28
	keyLeftCtrl   = 29
	keyLeftShift  = 42
	keyRightShift = 54
	keyLeftAlt    = 56
	keySpace      = 57
	keyF1         = 59 // F1..F10 are 59..68
	keyF11        = 87
	keyF12        = 88
	keyRightCtrl  = 97
	keyRightAlt   = 100
	keyHome       = 102
	keyUp         = 103
	keyPageUp     = 104
	keyLeft       = 105
	keyRight      = 106
	keyEnd        = 107
	keyDown       = 108
	keyPageDown   = 109
	keyInsert     = 110
	keyDelete     = 111
	keyLeftMeta   = 125
	keyRightMeta  = 126
	keyMenu       = 139
)

// keyOf maps a character of US-layout text to its key and whether shift
// must be held.
var keyOf = func() map[rune]struct {
	code  uint32
	shift bool
} {
	m := map[rune]struct {
		code  uint32
		shift bool
	}{}
	rows := []struct {
		first   uint32
		plain   string
		shifted string
	}{
		{2, "1234567890-=", "!@#$%^&*()_+"},
		{16, "qwertyuiop[]", "QWERTYUIOP{}"},
		{30, "asdfghjkl;'`", "ASDFGHJKL:\"~"},
		{43, `\zxcvbnm,./`, "|ZXCVBNM<>?"},
	}
	for _, r := range rows {
		for i, c := range r.plain {
			m[c] = struct {
				code  uint32
				shift bool
			}{r.first + uint32(i), false}
		}
		for i, c := range r.shifted {
			m[c] = struct {
				code  uint32
				shift bool
			}{r.first + uint32(i), true}
		}
	}
	m[' '] = struct {
		code  uint32
		shift bool
	}{keySpace, false}
	m['\n'] = struct {
		code  uint32
		shift bool
	}{keyEnter, false}
	m['\t'] = struct {
		code  uint32
		shift bool
	}{keyTab, false}
	return m
}()

// specialKeys are the SDK boot command's <name> keys.
var specialKeys = map[string]uint32{
	"bs": keyBackspace, "del": keyDelete, "enter": keyEnter, "return": keyEnter, "esc": keyEsc,
	"tab": keyTab, "spacebar": keySpace, "insert": keyInsert, "home": keyHome, "end": keyEnd,
	"pageup": keyPageUp, "pagedown": keyPageDown, "up": keyUp, "down": keyDown, "left": keyLeft, "right": keyRight,
	"leftalt": keyLeftAlt, "leftctrl": keyLeftCtrl, "leftshift": keyLeftShift, "leftsuper": keyLeftMeta,
	"rightalt": keyRightAlt, "rightctrl": keyRightCtrl, "rightshift": keyRightShift, "rightsuper": keyRightMeta,
	"menu": keyMenu,
	"f1":   keyF1, "f2": keyF1 + 1, "f3": keyF1 + 2, "f4": keyF1 + 3, "f5": keyF1 + 4, "f6": keyF1 + 5,
	"f7": keyF1 + 6, "f8": keyF1 + 7, "f9": keyF1 + 8, "f10": keyF1 + 9, "f11": keyF11, "f12": keyF12,
}

// keySender is what typing needs of the host.
type keySender interface {
	SendKeys(ctx context.Context, name string, codes []uint32, hold time.Duration) error
}

// keyDriver types boot commands through libvirt's send-key. libvirt sends
// a list of keys as one chord (all pressed, held, all released), so keys
// held with <xOn> ... <xOff> are remembered and sent with every later key.
type keyDriver struct {
	ctx      context.Context
	send     keySender
	machine  string
	interval time.Duration // between keys: slow guests drop faster input
	held     []uint32
}

var _ bootcommand.BCDriver = (*keyDriver)(nil)

const keyHold = 30 * time.Millisecond

func (d *keyDriver) SendKey(key rune, action bootcommand.KeyAction) error {
	k, ok := keyOf[key]
	if !ok {
		return fmt.Errorf("boot command: %q has no key on a US keyboard", key)
	}
	codes := []uint32{k.code}
	if k.shift {
		codes = []uint32{keyLeftShift, k.code}
	}
	return d.act(codes, action)
}

func (d *keyDriver) SendSpecial(special string, action bootcommand.KeyAction) error {
	code, ok := specialKeys[strings.ToLower(special)]
	if !ok {
		return fmt.Errorf("boot command: unknown special key <%s>", special)
	}
	return d.act([]uint32{code}, action)
}

func (d *keyDriver) act(codes []uint32, action bootcommand.KeyAction) error {
	switch action {
	case bootcommand.KeyOn:
		d.held = append(d.held, codes...)
		return nil
	case bootcommand.KeyOff:
		d.held = removeCodes(d.held, codes)
		return nil
	}
	chord := append(append([]uint32{}, d.held...), codes...)
	if err := d.send.SendKeys(d.ctx, d.machine, chord, keyHold); err != nil {
		return err
	}
	if d.interval > 0 {
		select {
		case <-time.After(d.interval):
		case <-d.ctx.Done():
			return d.ctx.Err()
		}
	}
	return nil
}

// Flush has nothing to do: every key went out when it was typed.
func (d *keyDriver) Flush() error { return nil }

func removeCodes(held, codes []uint32) []uint32 {
	out := held[:0]
	for _, h := range held {
		drop := false
		for _, c := range codes {
			drop = drop || h == c
		}
		if !drop {
			out = append(out, h)
		}
	}
	return out
}
