//go:build !linux

package fsblob

// renameNoReplace renames oldpath to newpath unless newpath exists, in which
// case it fails with an error matching os.ErrExist.
func renameNoReplace(oldpath, newpath string) error { return linkNoReplace(oldpath, newpath) }
