package stubbed

import "errors"

var errFailed = errors.New("stubbed: the C side failed")
