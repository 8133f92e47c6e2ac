package httpapi

// routes lists the whole API, one line per endpoint (GET /metrics, when
// WithMetrics gives it, is registered in server.go). {customer_id} accepts a
// customer UUID and, for the seed's client, an external id.
func (s *Server) routes() {
	s.handle("GET /healthz", s.handleHealth())
	s.handle("GET /readyz", s.handleReady())
	s.handle("GET /problems/{slug}", s.handleProblemPage())
	s.handle("GET /openapi.json", s.handleOpenAPI())
	s.handle("GET /docs", s.handleDocs())

	s.handle("GET /v1/tenants/me", s.handleTenantMe())
	s.handle("GET /v1/tenants/{id}/config", s.handleConfigGet())
	s.handle("PATCH /v1/tenants/{id}/config", s.handleConfigPatch())
	s.handle("GET /v1/webhooks/events", s.handleWebhookEvents())
	s.handle("GET /v1/webhooks/events/{id}", s.handleWebhookEvent())
	s.handle("POST /v1/webhooks/events/{id}/redeliver", s.handleRedeliver())
	s.handle("GET /v1/webhooks/health", s.handleWebhookHealth())

	s.handle("POST /v1/customers", s.handleCustomerCreate())
	s.handle("GET /v1/customers", s.handleCustomerList())
	s.handle("GET /v1/customers/{customer_id}", s.handleCustomerGet(byID))
	s.handle("GET /v1/customer-by-external-id/{external_id}", s.handleCustomerGet(byExternalID))

	s.handle("POST /v1/billable-metrics", s.handleMetricCreate())
	s.handle("GET /v1/billable-metrics", s.handleMetricList())
	s.handle("GET /v1/billable-metrics/{key}", s.handleMetricGet())
	s.handle("POST /v1/metering-rules", s.handleRuleCreate())
	s.handle("GET /v1/metering-rules", s.handleRuleList())

	s.handle("POST /v1/topup/grant", s.handleGrant(fromBody))
	s.handle("POST /v1/customers/{customer_id}/credits/grant", s.handleGrant(byID))
	s.handle("POST /v1/customer-by-external-id/{external_id}/credits/grant", s.handleGrant(byExternalID))

	s.handle("POST /v1/plans", s.handlePlanCreate())
	s.handle("GET /v1/plans", s.handlePlanList())
	s.handle("GET /v1/plans/{key}", s.handlePlanGet())
	s.handle("POST /v1/plans/{key}/archive", s.handlePlanArchive())
	s.handle("POST /v1/customers/{customer_id}/plan-purchases", s.handlePurchase(byID))
	s.handle("POST /v1/customer-by-external-id/{external_id}/plan-purchases", s.handlePurchase(byExternalID))
	s.handle("GET /v1/customers/{customer_id}/plan-purchases", s.handlePurchaseList(byID))
	s.handle("GET /v1/customer-by-external-id/{external_id}/plan-purchases", s.handlePurchaseList(byExternalID))
	s.handle("GET /v1/plan-purchases/{id}", s.handlePurchaseGet())

	s.handle("POST /v1/usage", s.handleUsage())
	s.handle("POST /v1/usage/batch", s.handleUsageBatch())

	s.handle("POST /v1/reserve", s.handleReserve())
	s.handle("POST /v1/reserve/{id}/commit", s.handleSettle(false))
	s.handle("POST /v1/reserve/{id}/release", s.handleSettle(true))
	s.handle("GET /v1/reserve/{id}", s.handleReservationGet())
	s.handle("GET /v1/reservations", s.handleReservationList())

	s.handle("POST /v1/transactions", s.handleTransaction())
	s.handle("GET /v1/transactions/{id}", s.handleTransactionGet())

	s.handle("GET /v1/customers/{customer_id}/credits", s.handleBalance(byID))
	s.handle("GET /v1/customer-by-external-id/{external_id}/credits", s.handleBalance(byExternalID))
	s.handle("GET /v1/customers/{customer_id}/ledger", s.handleLedger(byID))
	s.handle("GET /v1/customer-by-external-id/{external_id}/ledger", s.handleLedger(byExternalID))
	s.handle("GET /v1/customers/{customer_id}/entitlements/{key}", s.handleEntitlement(byID))
	s.handle("GET /v1/customer-by-external-id/{external_id}/entitlements/{key}", s.handleEntitlement(byExternalID))
}
