//go:build cgo

package pkcs11

/*
#include <stdlib.h>
#include <string.h>

// sr_attribute mirrors CK_ATTRIBUTE, for attributes whose value is itself
// an attribute array (CKA_UNWRAP_TEMPLATE), which github.com/miekg/pkcs11
// cannot build. Cryptoki structures are packed on Windows.
#ifdef _WIN32
#pragma pack(push, cryptoki, 1)
#endif
typedef struct {
	unsigned long type;
	void *pValue;
	unsigned long ulValueLen;
} sr_attribute;
#ifdef _WIN32
#pragma pack(pop, cryptoki)
#endif
*/
import "C"

import (
	"unsafe"

	"github.com/miekg/pkcs11"
)

// templateAttr is an attribute of type typ (CKA_UNWRAP_TEMPLATE) whose value
// is the attribute array tmpl. The values of tmpl are copied into C memory
// that free releases: call it once the PKCS#11 call that takes the
// attribute has returned (the array holds pointers into that memory).
func templateAttr(typ uint, tmpl []*pkcs11.Attribute) (a *pkcs11.Attribute, free func()) {
	if len(tmpl) == 0 {
		return &pkcs11.Attribute{Type: typ}, func() {}
	}
	var allocs []unsafe.Pointer
	arr := make([]C.sr_attribute, len(tmpl))
	for i, t := range tmpl {
		arr[i]._type = C.ulong(t.Type)
		if len(t.Value) > 0 {
			p := C.CBytes(t.Value)
			allocs = append(allocs, p)
			arr[i].pValue = p
			arr[i].ulValueLen = C.ulong(len(t.Value))
		}
	}
	raw := C.GoBytes(unsafe.Pointer(&arr[0]), C.int(len(arr)*int(unsafe.Sizeof(arr[0]))))
	return &pkcs11.Attribute{Type: typ, Value: raw}, func() {
		for _, p := range allocs {
			C.free(p)
		}
	}
}
