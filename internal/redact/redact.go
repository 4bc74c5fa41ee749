// Package redact takes secrets out of text that goes to logs.
package redact

import "strings"

// Mark is what stands in the log for a value taken out.
const Mark = "<redacted>"

// ShellEnv returns the shell command line cmd with the value of every
// environment assignment replaced by Mark: NAME=value, NAME='value' and
// NAME="value", wherever a word starts (after env, export or sudo too).
// Provisioners hand secrets to scripts that way (Packer's shell provisioner
// puts environment_vars in front of the script), and command lines are
// logged.
//
// The scan is lexical, not a shell parser, and errs on the side of taking
// out too much: it also finds assignments in a quoted "sh -c" argument, and
// takes the value out of any word shaped NAME=... (dd's if=/dev/zero too).
func ShellEnv(cmd string) string {
	var b strings.Builder
	for i := 0; i < len(cmd); {
		if wordStart(cmd, i) {
			if n := nameLen(cmd[i:]); n > 0 && i+n < len(cmd) && cmd[i+n] == '=' {
				b.WriteString(cmd[i : i+n+1])
				b.WriteString(Mark)
				i += n + 1
				i += valueLen(cmd[i:])
				continue
			}
		}
		b.WriteByte(cmd[i])
		i++
	}
	return b.String()
}

// wordStart reports whether a shell word may start at cmd[i]: after a
// blank, an operator, or a quote (an assignment at the start of a quoted
// sh -c script).
func wordStart(cmd string, i int) bool {
	return i == 0 || strings.IndexByte(" \t\n;&|()'\"`", cmd[i-1]) >= 0
}

// nameLen is the length of the variable name s starts with: a letter or
// '_', then letters, digits and '_'.
func nameLen(s string) int {
	for i := 0; i < len(s); i++ {
		c := s[i]
		letter := c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
		if !letter && (i == 0 || c < '0' || c > '9') {
			return i
		}
	}
	return len(s)
}

// valueLen is the length of the shell word s starts with: unquoted
// characters, backslash escapes, '...' and "..." strings, $(...) and
// `...` substitutions, up to an unquoted blank or operator. An unclosed
// quote runs to the end.
func valueLen(s string) int {
	i := 0
	for i < len(s) {
		switch c := s[i]; {
		case c == '\\':
			i += 2
		case c == '\'' || c == '`':
			i += closing(s[i+1:], c) + 1
		case c == '"':
			i += doubleQuotedLen(s[i+1:]) + 1
		case c == '$' && i+1 < len(s) && s[i+1] == '(':
			i += substitutionLen(s[i+2:]) + 2
		case strings.IndexByte(" \t\n;&|<>()", c) >= 0:
			return i
		default:
			i++
		}
	}
	return min(i, len(s))
}

// closing is the length of s up to and including the first q; all of s
// when there is none.
func closing(s string, q byte) int {
	if j := strings.IndexByte(s, q); j >= 0 {
		return j + 1
	}
	return len(s)
}

// doubleQuotedLen is the length of s up to and including the '"' that
// closes a double-quoted string, skipping backslash escapes.
func doubleQuotedLen(s string) int {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(s)
}

// substitutionLen is the length of s up to and including the ')' that
// closes a $( whose inside s starts with.
func substitutionLen(s string) int {
	depth := 1
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '(':
			depth++
		case ')':
			if depth--; depth == 0 {
				return i + 1
			}
		}
	}
	return len(s)
}
