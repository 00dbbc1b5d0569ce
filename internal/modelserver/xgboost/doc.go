// Package xgboost is berth's pure-Go XGBoost inference engine and the
// "xgboost" framework of the built-in model server.
//
// It reads the three model formats XGBoost writes — JSON, UBJSON and the
// legacy binary format that XGBoost 1.x save_model writes for files without a
// .json/.ubj extension (SageMaker's "xgboost-model") — detecting the format
// from the content, never the file name. Trees are re-laid out into one flat,
// read-only node array shared by all requests; evaluation follows XGBoost's
// own rules (float32 thresholds, x < threshold goes left, NaN takes the
// default direction, categorical splits send listed categories right).
//
// Requests and responses follow the SageMaker XGBoost container: text/csv,
// text/libsvm, application/json and application/jsonlines in; text/csv,
// application/json and application/jsonlines out.
package xgboost
