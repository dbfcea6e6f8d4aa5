package mail

import (
	"slices"

	"go.k6.io/k6/js/common"
)

func sortStrings(s []string) { slices.Sort(s) }

// toBytes accepts what scripts hold a message in: a string or an
// ArrayBuffer.
func toBytes(v any) ([]byte, error) {
	return common.ToBytes(v)
}
