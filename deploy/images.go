package deploy

import (
	"fmt"
	"strings"
)

// XGBoostVersion is the tag of SageMaker's XGBoost image that Register uses by default; it serves
// models saved by XGBoost 1.7 (JSON, UBJSON or the binary format).
const XGBoostVersion = "1.7-1"

// xgboostAccounts is the account that publishes sagemaker-xgboost (1.0-1 and later) in each region,
// from the SageMaker Python SDK's image_uri_config/xgboost.json.
var xgboostAccounts = map[string]string{
	"af-south-1":     "510948584623",
	"ap-east-1":      "651117190479",
	"ap-northeast-1": "354813040037",
	"ap-northeast-2": "366743142698",
	"ap-northeast-3": "867004704886",
	"ap-south-1":     "720646828776",
	"ap-south-2":     "628508329040",
	"ap-southeast-1": "121021644041",
	"ap-southeast-2": "783357654285",
	"ap-southeast-3": "951798379941",
	"ap-southeast-4": "106583098589",
	"ca-central-1":   "341280168497",
	"ca-west-1":      "190319476487",
	"cn-north-1":     "450853457545",
	"cn-northwest-1": "451049120500",
	"eu-central-1":   "492215442770",
	"eu-central-2":   "680994064768",
	"eu-north-1":     "662702820516",
	"eu-south-1":     "978288397137",
	"eu-south-2":     "104374241257",
	"eu-west-1":      "141502667606",
	"eu-west-2":      "764974769150",
	"eu-west-3":      "659782779980",
	"il-central-1":   "898809789911",
	"me-central-1":   "272398656194",
	"me-south-1":     "801668240914",
	"sa-east-1":      "737474898029",
	"us-east-1":      "683313688378",
	"us-east-2":      "257758044811",
	"us-gov-east-1":  "237065988967",
	"us-gov-west-1":  "414596584902",
	"us-west-1":      "746614075791",
	"us-west-2":      "246618743249",
}

// XGBoostImage returns the URI of SageMaker's XGBoost inference image in region, e.g.
// 683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1.
func XGBoostImage(region string) (string, error) {
	acct, ok := xgboostAccounts[region]
	if !ok {
		return "", errorf(ErrInvalid, "no SageMaker XGBoost image is known for region %q: pass the inference image with --image", region)
	}
	domain := "amazonaws.com"
	if strings.HasPrefix(region, "cn-") {
		domain = "amazonaws.com.cn"
	}
	return fmt.Sprintf("%s.dkr.ecr.%s.%s/sagemaker-xgboost:%s", acct, region, domain, XGBoostVersion), nil
}

// isXGBoostImage reports SageMaker's XGBoost images (which look for a file named xgboost-model).
func isXGBoostImage(image string) bool {
	return strings.Contains(image, "/sagemaker-xgboost:") || strings.Contains(image, "/xgboost:")
}
