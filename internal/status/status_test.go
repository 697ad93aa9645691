package status

import "testing"

func TestClassify(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want Class
	}{
		{"Closed", Final}, {"CLOSED", Final}, {" closed ", Final}, {"COMPLETE", Final}, {"success", Final},
		{"Pending", Waiting}, {"PROCESSING", Waiting}, {"ON_HOLD", Waiting}, {"OnHold", Waiting},
		{"Fail", Failed}, {"FAIL", Failed}, {"FAILED", Failed}, {"Refunded", Failed}, {"EXPIRED", Failed},
		{"cancelled", Failed}, {"Rejected", Failed},
		{"", Unknown}, {"cloſed", Unknown}, {"CLOSED2", Unknown}, {"weird", Unknown},
		{"closedclosedclosedclosedclosedclosed", Unknown},
	} {
		if got := Classify(tc.in); got != tc.want {
			t.Errorf("Classify(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
