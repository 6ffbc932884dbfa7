package secret

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

func TestText(t *testing.T) {
	raw := []byte("bearer-sekrit-value")
	tx, err := NewText(raw)
	if err != nil {
		t.Fatal(err)
	}
	raw[0] = 'X'
	if string(tx.Bytes()) != "bearer-sekrit-value" {
		t.Errorf("NewText() did not copy its input")
	}
	j, _ := json.Marshal(struct{ T Text }{tx})
	for _, s := range []string{tx.String(), fmt.Sprintf("%v %s %x %#v %q", tx, tx, tx, tx, tx), string(j)} {
		if strings.Contains(s, "sekrit") || !strings.Contains(s, Redacted) {
			t.Errorf("a Text printed as %q", s)
		}
	}
	same, _ := NewText([]byte("bearer-sekrit-value"))
	other, _ := NewText([]byte("bearer-sekrit-valuf"))
	if !tx.Equal(same) || tx.Equal(other) || tx.Equal(Text{}) {
		t.Errorf("Equal() is wrong")
	}
	tx.Destroy()
	if strings.Trim(string(tx.Bytes()), "\x00") != "" {
		t.Errorf("Destroy() left the secret")
	}
	for _, n := range []int{0, MaxText + 1} {
		if _, err := NewText(make([]byte, n)); err == nil {
			t.Errorf("NewText(%d bytes) = nil error, want ErrTextSize", n)
		}
	}
}
