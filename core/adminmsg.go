package core

import "errors"

// AdminMessage returns the error_msg the Admin API sends for a validation
// error: usually "invalid configuration: ..." and, for the messages APISIX
// sends bare, the message alone.
func AdminMessage(err error) string {
	var ve *ValidationError
	if errors.As(err, &ve) {
		return ve.AdminMessage()
	}
	return "invalid configuration: " + err.Error()
}
