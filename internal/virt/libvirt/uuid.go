package libvirt

import (
	"encoding/hex"
	"fmt"

	golibvirt "github.com/digitalocean/go-libvirt"
)

// parseUUID accepts the dashed hexadecimal form libvirt prints, and
// the same digits without dashes, which virsh and libvirt's XML take too.
func parseUUID(s string) (golibvirt.UUID, error) {
	var u golibvirt.UUID
	h := s
	if len(s) == 36 && s[8] == '-' && s[13] == '-' && s[18] == '-' && s[23] == '-' {
		h = s[0:8] + s[9:13] + s[14:18] + s[19:23] + s[24:]
	}
	if len(h) != 32 {
		return u, fmt.Errorf("%q is not a UUID such as 0b3e1c1e-4b5a-4c7e-9d33-0a8f2f3e6c11", s)
	}
	if _, err := hex.Decode(u[:], []byte(h)); err != nil {
		return u, fmt.Errorf("%q is not a UUID: %w", s, err)
	}
	return u, nil
}
