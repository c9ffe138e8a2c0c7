package sops

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"filippo.io/age"
	"gopkg.in/yaml.v3"
)

// FuzzDecrypt feeds arbitrary YAML with a sops block to Mask and Decrypt:
// they may refuse it, never panic. Seeds are the specs fixtures.
func FuzzDecrypt(f *testing.F) {
	files, _ := filepath.Glob("../testdata/sops/*/*.yaml")
	for _, p := range files {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte("a: ENC[AES256_GCM,data:AA==,iv:AA==,tag:AAAAAAAAAAAAAAAAAAAAAA==,type:str]\nsops: {age: [{enc: x}], lastmodified: '2020-01-01T00:00:00Z', mac: y}\n"))
	keyData, err := os.ReadFile("../testdata/sops/keys.txt")
	if err != nil {
		f.Fatal(err)
	}
	ids, err := age.ParseIdentities(bytes.NewReader(keyData))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, decrypt := range []bool{false, true} {
			docs := fuzzDocs(data)
			if !Encrypted(docs) {
				return
			}
			var err error
			if decrypt {
				_, err = Decrypt(docs, ids)
			} else {
				_, err = Mask(docs)
			}
			var se *Error
			if err != nil && !errors.As(err, &se) {
				t.Fatalf("error of type %T: %v", err, err)
			}
		}
	})
}

// fuzzDocs parses the documents of data up to the first error.
func fuzzDocs(data []byte) []*yaml.Node {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []*yaml.Node
	for {
		var doc yaml.Node
		if err := dec.Decode(&doc); err != nil { // io.EOF or a syntax error
			return docs
		}
		if len(doc.Content) == 1 {
			docs = append(docs, doc.Content[0])
		}
	}
}
