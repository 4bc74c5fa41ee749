package redact

import "testing"

func TestShellEnv(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"no assignment", `chmod +x /tmp/script.sh; /tmp/script.sh`, `chmod +x /tmp/script.sh; /tmp/script.sh`},
		{"options and URLs are not assignments", `ls --color=auto -l; curl "https://h/?x=1"`, `ls --color=auto -l; curl "https://h/?x=1"`},
		{
			"Packer's shell provisioner",
			`chmod +x /tmp/script.sh; PASSWORD='s3cret' FOO='bar' /tmp/script.sh`,
			`chmod +x /tmp/script.sh; PASSWORD=<redacted> FOO=<redacted> /tmp/script.sh`,
		},
		{"single quotes with spaces", `TOKEN='a b c' ./run`, `TOKEN=<redacted> ./run`},
		{"double quotes with escaped quotes", `MSG="say \"hi there\"" ./run`, `MSG=<redacted> ./run`},
		{"a quote escaped Packer's way", `PW='it'"'"'s secret' ./run`, `PW=<redacted> ./run`},
		{"unquoted", `A=1 B=two C=3x /bin/true`, `A=<redacted> B=<redacted> C=<redacted> /bin/true`},
		{"escaped blank", `K=a\ b cmd`, `K=<redacted> cmd`},
		{"after env", `env DB_PASS=hunter2 /tmp/x`, `env DB_PASS=<redacted> /tmp/x`},
		{"after export", `export API_KEY="k e y"; /tmp/x`, `export API_KEY=<redacted>; /tmp/x`},
		{"after an operator", `cd /x&&TOKEN=t ./y|z`, `cd /x&&TOKEN=<redacted> ./y|z`},
		{"lines", "A=1\nexport B='2 3'\n", "A=<redacted>\nexport B=<redacted>\n"},
		{
			"inside a quoted sh -c script",
			`echo x | sudo -S sh -c 'PASSWORD='s3cret' HOME_DIR=/root /tmp/script.sh'`,
			`echo x | sudo -S sh -c 'PASSWORD=<redacted> HOME_DIR=<redacted> /tmp/script.sh'`,
		},
		{"command substitution", `SECRET=$(cat /run/s | tr -d '\n') ./x`, `SECRET=<redacted> ./x`},
		{"backquotes", "K=`cat /run/s` ./x", `K=<redacted> ./x`},
		{"empty value", `EMPTY= cmd`, `EMPTY=<redacted> cmd`},
		{"unclosed quote", `K='open cmd`, `K=<redacted>`},
		{"non-ASCII text", `NAME='héllo wörld' ./x ünï`, `NAME=<redacted> ./x ünï`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ShellEnv(tc.in); got != tc.want {
				t.Errorf("ShellEnv(%q)\n got %q\nwant %q", tc.in, got, tc.want)
			}
		})
	}
}
