package sops

import (
	"regexp"
	"strings"
	"testing"
)

func TestRules(t *testing.T) {
	re := regexp.MustCompile
	for _, tc := range []struct {
		name  string
		rules rules
		path  string
		want  bool
	}{
		{"default suffix, plain key", rules{unencryptedSuffix: "_unencrypted"}, "data:password", true},
		{"default suffix, marked key", rules{unencryptedSuffix: "_unencrypted"}, "data:note_unencrypted", false},
		{"default suffix, marked parent", rules{unencryptedSuffix: "_unencrypted"}, "meta_unencrypted:name", false},
		{"encrypted suffix, match", rules{encryptedSuffix: "_secret"}, "db_secret", true},
		{"encrypted suffix, no match", rules{encryptedSuffix: "_secret"}, "db", false},
		{"encrypted regex on a parent", rules{encryptedRegex: re("^(data|stringData)$")}, "stringData:password", true},
		{"encrypted regex, other path", rules{encryptedRegex: re("^(data|stringData)$")}, "metadata:name", false},
		{"encrypted regex is unanchored unless anchored", rules{encryptedRegex: re("value")}, "spec:valueFrom:x", true},
		{"unencrypted regex", rules{unencryptedRegex: re("^metadata$")}, "metadata:name", false},
		{"unencrypted regex, other path", rules{unencryptedRegex: re("^metadata$")}, "spec:replicas", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.rules.encrypted(strings.Split(tc.path, ":")); got != tc.want {
				t.Errorf("encrypted(%s) = %v, want %v", tc.path, got, tc.want)
			}
		})
	}
}

func TestTyped(t *testing.T) {
	for _, tc := range []struct {
		typ, plain     string
		tag, text, mac string
		err            bool
	}{
		{typ: "str", plain: "a b", tag: "!!str", text: "a b", mac: "a b"},
		{typ: "bytes", plain: "\x01", tag: "!!str", text: "\x01", mac: "\x01"},
		{typ: "int", plain: "42", tag: "!!int", text: "42", mac: "42"},
		{typ: "int", plain: "x", err: true},
		{typ: "float", plain: "1.50", tag: "!!float", text: "1.5", mac: "1.5"},
		{typ: "bool", plain: "True", tag: "!!bool", text: "true", mac: "True"},
		{typ: "bool", plain: "False", tag: "!!bool", text: "false", mac: "False"},
		{typ: "bool", plain: "maybe", err: true},
		{typ: "time", plain: "2026-12-04T17:00:00Z", tag: "!!timestamp", text: "2026-12-04T17:00:00Z", mac: "2026-12-04T17:00:00Z"},
	} {
		v, err := typed(tc.typ, []byte(tc.plain))
		if tc.err {
			if err == nil || strings.Contains(err.Error(), tc.plain) {
				t.Errorf("%s %q: error %v, want one that does not quote the value", tc.typ, tc.plain, err)
			}
			continue
		}
		if err != nil || v.tag != tc.tag || v.text != tc.text || string(v.mac) != tc.mac {
			t.Errorf("%s %q: %+v %v", tc.typ, tc.plain, v, err)
		}
	}
}

func TestParseSealedRefuses(t *testing.T) {
	for _, s := range []string{
		"plain",
		"ENC[AES256_GCM,data:!!,iv:AA==,tag:AAAAAAAAAAAAAAAAAAAAAA==,type:str]",
		"ENC[AES256_GCM,data:AA==,iv:AA==,tag:AA==,type:str]",
		"ENC[AES256_GCM,data:AA==,iv:AA==,tag:AAAAAAAAAAAAAAAAAAAAAA==,type:comment]",
		"ENC[AES256_GCM,data:AA==,iv:AA==,tag:AAAAAAAAAAAAAAAAAAAAAA==,type:blob]",
	} {
		if _, err := parseSealed(s); err == nil {
			t.Errorf("%s: no error", s)
		}
	}
}
