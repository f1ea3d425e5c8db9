// Package storage is where backups and partition archives are kept. The
// Storage interface is small enough for an object store; Local keeps
// objects as files under a directory.
//
// An object becomes visible only when its upload is committed, so a job
// that fails or is killed half-way never leaves a partial object that List
// or Open could mistake for a complete one.
package storage
