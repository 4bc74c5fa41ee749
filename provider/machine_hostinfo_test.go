package provider

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/virtforge/terraform-provider-virt/internal/virt"
	"github.com/virtforge/terraform-provider-virt/internal/virt/libvirt"
)

// Terraform plans 10 machines at once: their host checks ask the host
// once between them, and a failed ask is not kept.
func TestCachedHostInfoAsksOnce(t *testing.T) {
	var asked atomic.Int32
	fail := true
	saved := readHostInfo
	t.Cleanup(func() { readHostInfo = saved })
	readHostInfo = func(context.Context, *libvirt.Client) (*virt.HostInfo, error) {
		asked.Add(1)
		if fail {
			return nil, errors.New("host away")
		}
		time.Sleep(50 * time.Millisecond) // a round trip, and a slow one: the others arrive meanwhile
		return &virt.HostInfo{Hostname: "h", CPUs: 2}, nil
	}
	lv := &libvirt.Client{} // only a key here
	t.Cleanup(func() { hostInfoCache.Delete(lv) })

	if _, err := cachedHostInfo(t.Context(), lv); err == nil {
		t.Fatal("a failed read gave no error")
	}
	fail = false
	var wg sync.WaitGroup
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			info, err := cachedHostInfo(t.Context(), lv)
			if err != nil || info.Hostname != "h" {
				t.Errorf("cachedHostInfo = %+v, %v", info, err)
			}
		}()
	}
	wg.Wait()
	if n := asked.Load(); n != 2 {
		t.Fatalf("the host was asked %d times (one failure, then 10 plans at once), want 2", n)
	}
}
