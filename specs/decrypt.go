package specs

import (
	"errors"
	"fmt"
	"strings"

	"filippo.io/age"
	"gopkg.in/yaml.v3"

	"github.com/kelpie-dev/kelpie/specs/sops"
)

// decryption says how a load reads SOPS-encrypted files (Options).
type decryption struct {
	ids              []age.Identity
	allowUndecrypted bool
}

// encryption is what a document's encrypted values became.
type encryption int

const (
	notEncrypted    encryption = iota
	encryptedPlain             // decrypted
	encryptedMasked            // placeholders (no key, AllowUndecrypted)
)

// identityFields are the fields that name an object: without the key they
// must be in clear, or the object cannot be checked at all.
var identityFields = map[string]bool{"apiVersion": true, "kind": true, "metadata.name": true, "metadata.namespace": true}

// decryptDocuments decrypts (or, without keys and when allowed, masks) the
// documents of a SOPS-encrypted file in place, and records which documents
// held encrypted values. On failure the whole file is refused: it reports
// false, with the error and every document's key marked failed.
func (job *fileJob) decryptDocuments(docs []*yaml.Node) bool {
	var leaves []sops.Leaf
	var err error
	mode := encryptedPlain
	if len(job.decrypt.ids) == 0 && job.decrypt.allowUndecrypted {
		mode = encryptedMasked
		leaves, err = sops.Mask(docs)
		for _, l := range leaves {
			if err == nil && identityFields[l.Field] {
				err = &sops.Error{Line: l.Node.Line, Column: l.Node.Column, Field: l.Field,
					Message: "encrypted, so the object cannot be checked without the age key (--age-key-file); " +
						"encrypt only the secret values, e.g. sops --encrypted-regex '^(data|stringData)$'"}
			}
		}
	} else {
		leaves, err = sops.Decrypt(docs, job.decrypt.ids)
	}
	if err != nil {
		job.errs = append(job.errs, sopsError(job.name, err))
		for _, doc := range docs {
			kind, _ := topScalar(doc, "kind")
			ki, ok := kinds[kind]
			job.failed = append(job.failed, failedKey(doc, kind, ok && ki.namespaced))
		}
		return false
	}
	if job.encrypted == nil {
		job.encrypted = map[*yaml.Node]encryption{}
	}
	for _, l := range leaves {
		job.encrypted[docs[l.Doc]] = mode
	}
	return true
}

// sopsError positions a decryption error in file.
func sopsError(file string, err error) *Error {
	var se *sops.Error
	if errors.As(err, &se) {
		msg := se.Message
		if !strings.HasPrefix(se.Field, sops.MetadataKey) {
			msg = "SOPS: " + msg
		}
		return &Error{Pos: Position{File: file, Line: se.Line, Column: se.Column}, Field: se.Field, Message: msg}
	}
	return &Error{Pos: Position{File: file}, Message: fmt.Sprintf("SOPS: %v", err)}
}
