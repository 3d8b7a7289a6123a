package declarative

import (
	"context"
	"fmt"
)

func contextWithCancel() (context.Context, context.CancelFunc) {
	return context.WithCancel(context.Background())
}

func sprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }
