package sops

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"time"
)

// sealedFormat is how sops writes an encrypted value (aes/cipher.go).
var sealedFormat = regexp.MustCompile(`^ENC\[AES256_GCM,data:(.+),iv:(.+),tag:(.+),type:(.+)\]`)

// sealed is one parsed ENC[AES256_GCM,…] value.
type sealed struct {
	data, iv, tag []byte
	typ           string
}

// parseSealed parses an encrypted value. Its errors never quote the value.
func parseSealed(s string) (*sealed, error) {
	m := sealedFormat.FindStringSubmatch(s)
	if m == nil {
		return nil, errors.New("not a SOPS encrypted value (want ENC[AES256_GCM,data:…,iv:…,tag:…,type:…])")
	}
	var v sealed
	var err error
	for _, part := range []struct {
		name string
		text string
		dst  *[]byte
	}{{"data", m[1], &v.data}, {"iv", m[2], &v.iv}, {"tag", m[3], &v.tag}} {
		if *part.dst, err = base64.StdEncoding.DecodeString(part.text); err != nil {
			return nil, fmt.Errorf("encrypted value: %s is not base64", part.name)
		}
	}
	if len(v.iv) == 0 {
		return nil, errors.New("encrypted value: empty iv")
	}
	if len(v.tag) != aes.BlockSize {
		return nil, fmt.Errorf("encrypted value: tag is %d bytes, want %d", len(v.tag), aes.BlockSize)
	}
	v.typ = m[4]
	switch v.typ {
	case "str", "int", "float", "bool", "bytes", "time":
	case "comment":
		return nil, errors.New("encrypted value: type comment where a value belongs")
	default:
		return nil, fmt.Errorf("encrypted value: unknown type %q", v.typ)
	}
	return &v, nil
}

// open decrypts the value with the data key; aad is the value's key path
// as sops joins it ("a:b:c:").
func (v *sealed) open(key []byte, aad string) ([]byte, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("data key: %w", err)
	}
	gcm, err := cipher.NewGCMWithNonceSize(block, len(v.iv))
	if err != nil {
		return nil, fmt.Errorf("data key: %w", err)
	}
	ct := make([]byte, 0, len(v.data)+len(v.tag))
	ct = append(append(ct, v.data...), v.tag...)
	plain, err := gcm.Open(nil, v.iv, ct, []byte(aad))
	if err != nil {
		return nil, errors.New("cannot decrypt the value: its ciphertext, or the key path it was sealed under, was changed after encryption")
	}
	return plain, nil
}

// plainValue is a decrypted value as YAML: its tag and text, and the bytes
// sops hashes into the MAC for it (sops.ToBytes of the typed value).
type plainValue struct {
	tag, text string
	mac       []byte
}

// typed converts decrypted bytes of type typ to a YAML scalar, as sops's
// cipher and its YAML store do. Errors never quote the value.
func typed(typ string, plain []byte) (plainValue, error) {
	switch typ {
	case "str":
		return plainValue{tag: "!!str", text: string(plain), mac: plain}, nil
	case "bytes":
		return plainValue{tag: "!!str", text: string(plain), mac: plain}, nil
	case "int":
		n, err := strconv.Atoi(string(plain))
		if err != nil {
			return plainValue{}, errors.New("decrypted value of type int is not an integer")
		}
		s := strconv.Itoa(n)
		return plainValue{tag: "!!int", text: s, mac: []byte(s)}, nil
	case "float":
		f, err := strconv.ParseFloat(string(plain), 64)
		if err != nil {
			return plainValue{}, errors.New("decrypted value of type float is not a number")
		}
		s := strconv.FormatFloat(f, 'f', -1, 64)
		return plainValue{tag: "!!float", text: s, mac: []byte(s)}, nil
	case "bool":
		b, err := strconv.ParseBool(string(plain))
		if err != nil {
			return plainValue{}, errors.New("decrypted value of type bool is not a boolean")
		}
		return plainValue{tag: "!!bool", text: strconv.FormatBool(b), mac: []byte(sopsBool(b))}, nil
	case "time":
		var t time.Time
		if err := t.UnmarshalText(plain); err != nil {
			return plainValue{}, errors.New("decrypted value of type time is not a timestamp")
		}
		s, _ := t.MarshalText()
		return plainValue{tag: "!!timestamp", text: string(s), mac: s}, nil
	}
	return plainValue{}, fmt.Errorf("unknown type %q", typ)
}

// sopsBool is how sops writes a boolean: Python's True and False.
func sopsBool(b bool) string {
	if b {
		return "True"
	}
	return "False"
}

// placeholder stands for an encrypted value that was not decrypted: a
// value of the right type derived from the ciphertext only, so it changes
// when the ciphertext does and tells nothing about the plaintext. A string
// placeholder is valid base64, so it also stands in a Secret's data.
func placeholder(typ, ciphertext string) plainValue {
	switch typ {
	case "int":
		return plainValue{tag: "!!int", text: "1"}
	case "float":
		return plainValue{tag: "!!float", text: "1"}
	case "bool":
		return plainValue{tag: "!!bool", text: "false"}
	}
	sum := sha256.Sum256([]byte(ciphertext))
	return plainValue{tag: "!!str", text: base64.StdEncoding.EncodeToString(sum[:9])}
}
