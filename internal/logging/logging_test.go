package logging

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// Durations are whole milliseconds, whatever the logger.
func TestDurationsAreWholeMilliseconds(t *testing.T) {
	var buf bytes.Buffer
	log, err := New(&buf, "info", FormatJSON)
	if err != nil {
		t.Fatal(err)
	}
	log.Info().Dur("took_ms", 2924390*time.Microsecond).Msg("x")
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("%v: %s", err, buf.Bytes())
	}
	if got, ok := line["took_ms"].(float64); !ok || got != 2924 {
		t.Errorf(`"took_ms" = %v in %s; want the integer 2924`, line["took_ms"], buf.Bytes())
	}
	if !bytes.Contains(buf.Bytes(), []byte(`"took_ms":2924,`)) {
		t.Errorf("not an integer: %s", buf.Bytes())
	}
}
