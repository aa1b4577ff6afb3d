// Package pricing estimates what SageMaker real-time endpoints cost from an embedded, dated table
// of on-demand list prices per instance type and region.
//
// Source and date: the figures below were NOT read from AWS's own price list (aws.amazon.com/
// sagemaker/pricing or the AWS Price List API were not reachable from where this table was
// written, on 2026-11-29). They are us-east-1 on-demand real-time inference prices as quoted by
// two public write-ups that cite AWS's published prices:
//   - zircon.tech, "The real cost of running AI models on AWS SageMaker inference", prices "for
//     us-east-1 as of October 2025": ml.m5.xlarge, ml.g5.xlarge;
//   - wring.co, "SageMaker Inference: Real-Time vs Serverless", March 2026: ml.t3.medium,
//     ml.c7g.large, ml.g5.2xlarge, ml.inf2.xlarge, ml.p4d.24xlarge.
//
// The two disagree on ml.g5.xlarge ($1.41 and $1.21 an hour); the table keeps the higher one so
// that estimates err towards warning. Only the types and region that could be sourced are listed:
// any other type or region is "no price known", never a guess. Replace the table with figures from
// the AWS Price List API (service code AmazonSageMaker, "Hosting" usage) to extend it.
package pricing

import "strings"

// Date is when the table's figures were collected.
const Date = "2026-11-29"

// Source names where the figures come from, for the dashboard's footnote.
const Source = "us-east-1 on-demand list prices as quoted by zircon.tech (Oct 2025) and wring.co (Mar 2026); not confirmed against AWS's price list"

// HoursPerMonth is the average month AWS's calculator uses (730 hours).
const HoursPerMonth = 730.0

// Hourly is the on-demand price in USD of one instance-hour of itype in region, and whether it is
// known. A switch rather than a map keeps the table constant.
func Hourly(region, itype string) (float64, bool) {
	switch strings.ToLower(region) + "/" + strings.ToLower(itype) {
	case "us-east-1/ml.t3.medium":
		return 0.05, true
	case "us-east-1/ml.c7g.large":
		return 0.10, true
	case "us-east-1/ml.m5.xlarge":
		return 0.269, true
	case "us-east-1/ml.inf2.xlarge":
		return 0.76, true
	case "us-east-1/ml.g5.xlarge":
		return 1.41, true
	case "us-east-1/ml.g5.2xlarge":
		return 1.52, true
	case "us-east-1/ml.p4d.24xlarge":
		return 37.69, true
	}
	return 0, false
}

// Monthly is the estimated monthly price of count instances of itype in region running all month.
func Monthly(region, itype string, count int) (float64, bool) {
	p, ok := Hourly(region, itype)
	if !ok {
		return 0, false
	}
	return p * HoursPerMonth * float64(max(count, 0)), true
}
