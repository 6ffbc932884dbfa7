package pkcs11

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const mod = "module-path=/usr/lib/softhsm/libsofthsm2.so"

func TestParseURI(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want URI
	}{
		{"pkcs11:token=eu1?" + mod + "&pin-source=file:/etc/strongroom/pin",
			URI{Token: "eu1", ModulePath: "/usr/lib/softhsm/libsofthsm2.so", PINFile: "/etc/strongroom/pin"}},
		{"PKCS11:token=eu1?" + mod + "&pin-source=/etc/pin",
			URI{Token: "eu1", ModulePath: "/usr/lib/softhsm/libsofthsm2.so", PINFile: "/etc/pin"}},
		{"pkcs11:?" + mod + "&pin-source=/pin:1",
			URI{ModulePath: "/usr/lib/softhsm/libsofthsm2.so", PINFile: "/pin:1"}},
		{"pkcs11:token=eu1?pin-source=file:///run/secrets/pin&" + mod,
			URI{Token: "eu1", ModulePath: "/usr/lib/softhsm/libsofthsm2.so", PINFile: "/run/secrets/pin"}},
		{"pkcs11:token=eu1?" + mod + "&pin-source=file://localhost/run/pin",
			URI{Token: "eu1", ModulePath: "/usr/lib/softhsm/libsofthsm2.so", PINFile: "/run/pin"}},
		{"pkcs11:token=eu1?" + mod + "&pin-source=env:STRONGROOM_PIN",
			URI{Token: "eu1", ModulePath: "/usr/lib/softhsm/libsofthsm2.so", PINEnv: "STRONGROOM_PIN"}},
		{"pkcs11:token=My%20Token%3B%3F%25;manufacturer=SoftHSM%20project;serial=0123abcd;model=SoftHSM%20v2;slot-id=0042" +
			"?module-path=/opt/my%20hsm/lib%2Bp11.so&pin-source=file:/etc/a%26b",
			URI{Token: "My Token;?%", Manufacturer: "SoftHSM project", Serial: "0123abcd", Model: "SoftHSM v2",
				SlotID: 42, HasSlotID: true, ModulePath: "/opt/my hsm/lib+p11.so", PINFile: "/etc/a&b"}},
		{"pkcs11:token=a+b=c?" + mod + "&pin-source=/p", // '+' is literal, '=' may appear in values
			URI{Token: "a+b=c", ModulePath: "/usr/lib/softhsm/libsofthsm2.so", PINFile: "/p"}},
		{"pkcs11:token=%E2%82%AC?" + mod + "&pin-source=/p",
			URI{Token: "€", ModulePath: "/usr/lib/softhsm/libsofthsm2.so", PINFile: "/p"}},
	} {
		got, err := ParseURI(tc.in)
		if err != nil {
			t.Errorf("ParseURI(%q) error = %v", tc.in, err)
			continue
		}
		if got != tc.want {
			t.Errorf("ParseURI(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
		again, err := ParseURI(got.String())
		if err != nil || again != got {
			t.Errorf("ParseURI(%q.String() = %q) = %+v, %v; want %+v", tc.in, got.String(), again, err, got)
		}
	}
}

func TestParseURIErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", `must start with "pkcs11:"`},
		{"soft:/x", `must start with "pkcs11:"`},
		{"pkcs11:token=eu1?" + mod + "&pin-value=1234", "pin-value is refused"},
		{"pkcs11:token=eu1?" + mod, "lacks pin-source"},
		{"pkcs11:token=eu1?pin-source=/p", "lacks module-path"},
		{"pkcs11:token=eu1?module-path=libsofthsm2.so&pin-source=/p", "must be an absolute path"},
		{"pkcs11:token=eu1?module-name=softhsm2&pin-source=/p", "module-name is not supported"},
		{"pkcs11:token=eu1;token=eu2?" + mod + "&pin-source=/p", "more than once"},
		{"pkcs11:token=eu1?" + mod + "&" + mod + "&pin-source=/p", "more than once"},
		{"pkcs11:tokne=eu1?" + mod + "&pin-source=/p", `unsupported URI path attribute "tokne"`},
		{"pkcs11:object=k;token=eu1?" + mod + "&pin-source=/p", "names an object"},
		{"pkcs11:token=eu1?" + mod + "&pin-source=/p&x-vendor=1", `unsupported URI query attribute "x-vendor"`},
		{"pkcs11:token?" + mod + "&pin-source=/p", "want name=value"},
		{"pkcs11:token=?" + mod + "&pin-source=/p", "is empty"},
		{"pkcs11:token=a%2?" + mod + "&pin-source=/p", "invalid percent-encoding"},
		{"pkcs11:token=a%zz?" + mod + "&pin-source=/p", "invalid percent-encoding"},
		{"pkcs11:token=a b?" + mod + "&pin-source=/p", "must be percent-encoded"},
		{"pkcs11:token=a%00b?" + mod + "&pin-source=/p", "NUL"},
		{"pkcs11:token=eu1?" + mod + "&pin-source=/p#frag", "fragment"},
		{"pkcs11:slot-id=-1?" + mod + "&pin-source=/p", "not a decimal number"},
		{"pkcs11:slot-id=99999999999999999999999?" + mod + "&pin-source=/p", "out of range"},
		{"pkcs11:token=eu1?" + mod + "&pin-source=env:1BAD", "valid environment variable name"},
		{"pkcs11:token=eu1?" + mod + "&pin-source=env:", "valid environment variable name"},
		{"pkcs11:token=eu1?" + mod + "&pin-source=file://evil.example/pin", "only local files"},
		{"pkcs11:token=eu1?" + mod + "&pin-source=file:pin", "needs an absolute path"},
		{"pkcs11:token=eu1?" + mod + "&pin-source=https://x/pin", "neither an absolute path nor env:NAME"},
		{"pkcs11:token=eu1?" + mod + "&pin-source=|/bin/cat%20/pin", "cannot run a command"},
		{"pkcs11:token=eu1?" + mod + "&pin-source=pin.txt", "neither an absolute path nor env:NAME"},
	} {
		_, err := ParseURI(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "pkcs11: ") {
			t.Errorf("ParseURI(%q) error = %v, want a pkcs11: error containing %q", tc.in, err, tc.want)
		}
	}
}

func TestURIString(t *testing.T) {
	u := URI{Token: "eu 1", SlotID: 7, HasSlotID: true, ModulePath: "/usr/lib/p11.so", PINEnv: "PIN"}
	const want = "pkcs11:token=eu%201;slot-id=7?module-path=/usr/lib/p11.so&pin-source=env%3APIN"
	if got := u.String(); got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got := (URI{PINFile: "//host/pin"}).PINSource(); got != "file //host/pin" {
		t.Errorf("PINSource() = %q", got)
	}
	u = URI{ModulePath: "/m.so", PINFile: "//host/pin"} // a local path on POSIX
	if again, err := ParseURI(u.String()); err != nil || again != u {
		t.Errorf("ParseURI(%q) = %+v, %v", u.String(), again, err)
	}
}

// Values that may be a PIN typed in the wrong place never appear in errors.
func TestParseURIDoesNotEchoPINs(t *testing.T) {
	const pin = "735911"
	for _, in := range []string{
		"pkcs11:token=eu1?" + mod + "&pin-value=" + pin,
		"pkcs11:token=eu1?" + mod + "&pin-value=" + pin + "%zz",
		"pkcs11:token=eu1?" + mod + "&pin-value=" + pin + "%20",
		"pkcs11:token=eu1?" + mod + "&pin-source=" + pin,
		"pkcs11:token=eu1?" + mod + "&pin-source=env:" + pin,
		"pkcs11:token=eu1?" + mod + "&pin-source=" + pin + ":x",
		"pkcs11:token=eu1?" + mod + "&pin-source=/p&" + pin,
		"pkcs11:token=eu1;" + pin + "?" + mod + "&pin-source=/p",
		"pkcs11:token=eu1?" + mod + "&pin-source=%" + pin,
	} {
		_, err := ParseURI(in)
		if err == nil || strings.Contains(err.Error(), pin) {
			t.Errorf("ParseURI(%q) error = %v, want an error that does not quote the PIN", in, err)
		}
	}
}

func TestReadPIN(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for name, tc := range map[string]struct{ content, want string }{
		"plain":       {"1234", "1234"},
		"newline":     {"1234\n", "1234"},
		"crlf":        {"1234\r\n", "1234"},
		"one newline": {"1234\n\n", "1234\n"},
		"spaces kept": {" 12 34 \n", " 12 34 "},
	} {
		pin, err := readPIN(URI{PINFile: write(name, tc.content)})
		if err != nil || string(pin) != tc.want {
			t.Errorf("%s: readPIN = %q, %v, want %q", name, pin, err, tc.want)
		}
	}

	t.Setenv("SR_TEST_PIN", "5678")
	if pin, err := readPIN(URI{PINEnv: "SR_TEST_PIN"}); err != nil || string(pin) != "5678" {
		t.Errorf("readPIN(env) = %q, %v", pin, err)
	}

	for name, tc := range map[string]struct {
		u    URI
		want string
	}{
		"missing file": {URI{PINFile: filepath.Join(dir, "nope")}, "cannot read the PIN file"},
		"empty file":   {URI{PINFile: write("empty", "\n")}, "is empty"},
		"large file":   {URI{PINFile: write("large", strings.Repeat("x", maxPINFile+1))}, "larger than"},
		"directory":    {URI{PINFile: dir}, "cannot read the PIN file"},
		"unset env":    {URI{PINEnv: "SR_TEST_PIN_UNSET"}, "unset or empty"},
	} {
		pin, err := readPIN(tc.u)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: readPIN error = %v, want one containing %q", name, err, tc.want)
		}
		if pin != nil {
			t.Errorf("%s: readPIN returned a PIN with an error", name)
		}
	}
}

func FuzzParseURI(f *testing.F) {
	f.Add("pkcs11:token=eu1?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/pin")
	f.Add("pkcs11:token=a%20b;serial=1;slot-id=3?module-path=/m.so&pin-source=env:PIN")
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParseURI(s)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "pkcs11: ") {
				t.Errorf("ParseURI(%q) error %q lacks the pkcs11: prefix", s, err)
			}
			return
		}
		if !filepath.IsAbs(u.ModulePath) || (u.PINFile == "") == (u.PINEnv == "") {
			t.Errorf("ParseURI(%q) = %+v: want an absolute module path and exactly one PIN source", s, u)
		}
		for _, v := range []string{u.Token, u.Manufacturer, u.Serial, u.Model, u.ModulePath, u.PINFile, u.PINEnv} {
			if strings.IndexByte(v, 0) >= 0 {
				t.Errorf("ParseURI(%q) = %+v: a value contains NUL", s, u)
			}
		}
		again, err := ParseURI(u.String())
		if err != nil || again != u {
			t.Errorf("ParseURI(%q).String() = %q, which parses to %+v, %v", s, u.String(), again, err)
		}
	})
}
