package httpapi

import (
	"encoding/json"
	"net/http"

	"github.com/creditd/creditd/internal/credit"
	"github.com/creditd/creditd/internal/ledger"
	"github.com/creditd/creditd/internal/store"
)

// blockJSON is the credit block object.
type blockJSON struct {
	ID                 string          `json:"id"`
	CustomerID         string          `json:"customer_id"`
	ExternalCustomerID *string         `json:"external_customer_id"`
	OriginalAmount     int64           `json:"original_amount"`
	RemainingAmount    int64           `json:"remaining_amount"`
	Priority           int             `json:"priority"`
	ExpiresAt          Time            `json:"expires_at"`
	Source             string          `json:"source"`
	Reason             *string         `json:"reason"`
	PricePaid          int64           `json:"price_paid"`
	Currency           *string         `json:"currency"`
	ExternalPaymentID  *string         `json:"external_payment_id"`
	Metadata           json.RawMessage `json:"metadata"`
	CreatedAt          Time            `json:"created_at"`
}

func blockOut(b store.Block, c store.Customer) blockJSON {
	return blockJSON{
		ID: b.ID, CustomerID: c.ID, ExternalCustomerID: nullable(c.ExternalID),
		OriginalAmount: b.Original, RemainingAmount: b.Remaining, Priority: b.Priority, ExpiresAt: Time(b.ExpiresAt),
		Source: b.Source, Reason: nullable(b.Reason), PricePaid: b.PricePaid, Currency: nullable(b.Currency),
		ExternalPaymentID: nullable(b.ExternalPaymentID), Metadata: metadataOut(b.Metadata), CreatedAt: Time(b.CreatedAt),
	}
}

func grantOut(g ledger.GrantResult) blockJSON { return blockOut(g.Block, g.Customer) }

type grantRequest struct {
	CustomerID         string    `json:"customer_id"`
	ExternalCustomerID string    `json:"external_customer_id"`
	Credits            *int64    `json:"credits"`
	Priority           *int64    `json:"priority"`
	ExpiresAt          Timestamp `json:"expires_at"`
	Source             *string   `json:"source"`
	Reason             string    `json:"reason"`
	PricePaid          int64     `json:"price_paid"`
	Currency           string    `json:"currency"`
	ExternalPaymentID  string    `json:"external_payment_id"`
	Metadata           Metadata  `json:"metadata"`
}

// input is the grant the body asks for, its customer aside.
func (req grantRequest) input(defaultSource, key string) (ledger.GrantInput, error) {
	in := ledger.GrantInput{
		Reason: req.Reason, PricePaid: req.PricePaid, Currency: req.Currency, ExternalPaymentID: req.ExternalPaymentID,
		Metadata: json.RawMessage(req.Metadata), ExpiresAt: req.ExpiresAt.Time, Source: defaultSource,
		IdempotencyKey: key,
	}
	if req.Credits == nil {
		return ledger.GrantInput{}, credit.Invalid("credits", "is required")
	}
	in.Credits = *req.Credits
	if req.Priority != nil {
		in.Priority = *req.Priority
	}
	if req.Source != nil && *req.Source != "" {
		in.Source = *req.Source
	}
	// Lengths other than reason's are package ledger's rules.
	var c checks
	c.text("source", in.Source, 0)
	c.text("reason", in.Reason, maxTextLen)
	c.text("currency", in.Currency, 0)
	c.text("external_payment_id", in.ExternalPaymentID, 0)
	return in, c.err()
}

// handleGrant serves the three grant endpoints. POST /v1/topup/grant takes
// its customer from the body and creates an unknown external id (source
// "topup" by default); the customer-scoped twins default the source to
// "grant", and only the external-id form creates its customer.
func (s *Server) handleGrant(a addressing) handlerFunc {
	defaultSource := "grant"
	if a == fromBody {
		defaultSource = "topup"
	}
	return func(w http.ResponseWriter, r *http.Request) error {
		return s.mutate(w, r, func(body []byte) (ledger.Command, error) {
			req := grantRequest{ExpiresAt: Timestamp{field: "expires_at"}}
			if err := decode(body, &req); err != nil {
				return nil, err
			}
			in, err := req.input(defaultSource, r.Header.Get("Idempotency-Key"))
			if err != nil {
				return nil, err
			}
			switch a {
			case fromBody:
				ref, err := bodyCustomer(req.CustomerID, req.ExternalCustomerID)
				if err != nil {
					return nil, err
				}
				in.Customer, in.AutoCreate = ref, true
			default:
				ref, err := pathCustomer(r, a)
				if err != nil {
					return nil, err
				}
				// Only the external-id form may create its customer.
				in.Customer, in.AutoCreate = ref, a == byExternalID
			}
			return ledger.Grant{In: in, Encode: encodeAs(http.StatusCreated, grantOut)}, nil
		}, nil)
	}
}
