package webhook

import "testing"

func BenchmarkVerify(b *testing.B) {
	body := envelopeBody(b, "0b7c2f7e-1d1e-4c59-9a55-3f0d2b6a9e10", "CRYPTO_TRANSFER.UPDATED", sampleDeposit)
	env := mustEnvelope(b, body)
	b.Run("resource/current", func(b *testing.B) {
		v := mustVerifier(b, SignedResource, testSecret, testPrevSecret)
		sig := sign(testSecret, env.Resource)
		benchVerify(b, v, sig, body, env)
	})
	b.Run("resource/previous", func(b *testing.B) {
		v := mustVerifier(b, SignedResource, testSecret, testPrevSecret)
		sig := sign(testPrevSecret, env.Resource)
		benchVerify(b, v, sig, body, env)
	})
	b.Run("body", func(b *testing.B) {
		v := mustVerifier(b, SignedBody, testSecret, testPrevSecret)
		sig := sign(testSecret, string(body))
		benchVerify(b, v, sig, body, nil)
	})
}

func benchVerify(b *testing.B, v *Verifier, sig string, body []byte, env *Envelope) {
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := v.Verify(sig, body, env); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseEnvelope(b *testing.B) {
	body := envelopeBody(b, "0b7c2f7e-1d1e-4c59-9a55-3f0d2b6a9e10", "CRYPTO_TRANSFER.UPDATED", sampleDeposit)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := ParseEnvelope(body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkClassifyResource(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(sampleDeposit)))
	for b.Loop() {
		c, err := ClassifyResource(sampleDeposit)
		if err != nil || c.Kind != KindDeposit {
			b.Fatal(c, err)
		}
	}
}

func BenchmarkParseAmount(b *testing.B) {
	for _, s := range []string{"10.5", "123456789012345678901234567890.123456789012345678"} {
		b.Run(s[:4], func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ParseAmount(s); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
