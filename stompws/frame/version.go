package frame

import "strconv"

// Version is a STOMP protocol version. The zero value is not a version; the constants are ordered,
// so a higher value is a newer protocol.
type Version uint8

// The protocol versions. They differ in this package only in header escaping.
const (
	V10 Version = 1 // "1.0": no header escaping
	V11 Version = 2 // "1.1": escapes \n \c \\ ; \r is an undefined escape (fatal)
	V12 Version = 3 // "1.2": escapes \r \n \c \\
)

// String returns the version as written in the accept-version and version headers: "1.0", "1.1"
// or "1.2". Any other value gives "Version(n)".
func (v Version) String() string {
	switch v {
	case V10:
		return "1.0"
	case V11:
		return "1.1"
	case V12:
		return "1.2"
	}
	return "Version(" + strconv.Itoa(int(v)) + ")"
}

// ParseVersion returns the Version written as s ("1.0", "1.1" or "1.2", exactly), and false for
// anything else.
func ParseVersion(s string) (Version, bool) {
	switch s {
	case "1.0":
		return V10, true
	case "1.1":
		return V11, true
	case "1.2":
		return V12, true
	}
	return 0, false
}
