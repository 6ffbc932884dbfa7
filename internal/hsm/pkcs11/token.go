//go:build cgo

package pkcs11

import (
	"crypto/hmac"
	"fmt"
	"strings"

	"github.com/miekg/pkcs11"
)

// findToken returns the slot of the one initialised token that the URI's
// path attributes select. When none or several match, the error lists the
// tokens that are present.
func findToken(m *module, u URI) (uint, pkcs11.TokenInfo, error) {
	slots, err := m.ctx.GetSlotList(true)
	if err != nil {
		return 0, pkcs11.TokenInfo{}, fmt.Errorf("pkcs11: C_GetSlotList of module %s: %w", m.path, err)
	}
	var present, matching []string
	var slot uint
	var info pkcs11.TokenInfo
	for _, s := range slots {
		ti, err := m.ctx.GetTokenInfo(s)
		if err != nil || ti.Flags&pkcs11.CKF_TOKEN_INITIALIZED == 0 {
			continue
		}
		desc := fmt.Sprintf("%q (serial %s, slot-id %d)", ti.Label, ti.SerialNumber, s)
		present = append(present, desc)
		if u.Token != "" && u.Token != ti.Label ||
			u.Manufacturer != "" && u.Manufacturer != ti.ManufacturerID ||
			u.Serial != "" && u.Serial != ti.SerialNumber ||
			u.Model != "" && u.Model != ti.Model ||
			u.HasSlotID && u.SlotID != uint64(s) {
			continue
		}
		matching = append(matching, desc)
		slot, info = s, ti
	}
	switch {
	case len(matching) == 1:
		return slot, info, nil
	case len(matching) > 1:
		return 0, info, fmt.Errorf("pkcs11: %d tokens match %s in module %s: %s; add serial= or slot-id= to the URI",
			len(matching), u.tokenFilter(), m.path, strings.Join(matching, ", "))
	case len(present) == 0:
		return 0, info, fmt.Errorf("pkcs11: no token matches %s in module %s: the module has no initialised token",
			u.tokenFilter(), m.path)
	}
	hint := ""
	if m.refs > 1 {
		// SoftHSM2 for one does not rescan its tokens.
		hint = "; the module was already loaded by this process, and some modules do not see tokens " +
			"created since then until every HSM using the module is closed"
	}
	return 0, info, fmt.Errorf("pkcs11: no token matches %s in module %s; tokens present: %s%s",
		u.tokenFilter(), m.path, strings.Join(present, ", "), hint)
}

// login logs the process in to the token with pin on session s, or checks pin
// against the login already in place. The caller holds registry.mu.
func login(m *module, ts *tokenState, s pkcs11.SessionHandle, label string, u URI, pin []byte) error {
	mac := pinMAC(pin)
	err := m.ctx.Login(s, pkcs11.CKU_USER, string(pin))
	switch {
	case err == nil:
		ts.pinMAC = mac
		return nil
	case isRV(err, pkcs11.CKR_USER_ALREADY_LOGGED_IN):
		// PKCS#11 logs in the whole process, so the token did not check the
		// PIN. Check it against the one that logged in.
		if ts.logins == 0 {
			return fmt.Errorf("pkcs11: token %q is already logged in by another component of this process, "+
				"so the PIN from %s cannot be checked; refusing to use it", label, u.PINSource())
		}
		if !hmac.Equal(mac[:], ts.pinMAC[:]) {
			return fmt.Errorf("pkcs11: the PIN in %s was refused: it differs from the PIN that this process "+
				"already logged in to token %q with", u.PINSource(), label)
		}
		return nil
	case isRV(err, pkcs11.CKR_PIN_INCORRECT), isRV(err, pkcs11.CKR_PIN_LEN_RANGE):
		return fmt.Errorf("pkcs11: token %q refused the PIN in %s (%w); fix the PIN, "+
			"but mind that repeated failures may lock the token", label, u.PINSource(), err)
	case isRV(err, pkcs11.CKR_PIN_LOCKED):
		return fmt.Errorf("pkcs11: the user PIN of token %q is locked (%w); the token's security officer must unlock it",
			label, err)
	case isRV(err, pkcs11.CKR_USER_PIN_NOT_INITIALIZED):
		return fmt.Errorf("pkcs11: token %q has no user PIN yet (%w); its security officer must set one", label, err)
	}
	return fmt.Errorf("pkcs11: C_Login to token %q failed: %w", label, err)
}

// describe is Info.Description: who made the token and the library.
func describe(m *module, ti pkcs11.TokenInfo) string {
	d := fmt.Sprintf("%s %s, serial %s, firmware %d.%d", strings.TrimSpace(ti.ManufacturerID),
		strings.TrimSpace(ti.Model), strings.TrimSpace(ti.SerialNumber), ti.FirmwareVersion.Major, ti.FirmwareVersion.Minor)
	if li, err := m.ctx.GetInfo(); err == nil {
		d += fmt.Sprintf("; library %s (%s) %d.%d, Cryptoki %d.%d", strings.TrimSpace(li.LibraryDescription),
			strings.TrimSpace(li.ManufacturerID), li.LibraryVersion.Major, li.LibraryVersion.Minor,
			li.CryptokiVersion.Major, li.CryptokiVersion.Minor)
	}
	return d + "; module " + m.path
}

// poolSize is how many sessions to open with the token.
func poolSize(ti pkcs11.TokenInfo) int {
	n := ti.MaxRwSessionCount
	if n == pkcs11.CK_EFFECTIVELY_INFINITE || n == pkcs11.CK_UNAVAILABLE_INFORMATION || n > maxPoolSize {
		return maxPoolSize
	}
	return int(n)
}
