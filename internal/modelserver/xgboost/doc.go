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
//
// application/x-parquet is accepted too, beyond the container (which takes
// Parquet for training only, with the label in the first column, and
// answers 415 to it at inference): a Parquet file whose columns are all
// numeric (INT32, INT64, FLOAT, DOUBLE; nulls are missing values) gives one
// row per record with its columns as the features in order — no label
// column, exactly as text/csv — and gets the same answers, in the same
// shapes, as the CSV of the same rows. A batch transform job over Parquet
// objects uses SplitType None, so each object is one request.
// Non-numeric or nested columns and corrupt files are 400s, like bad CSV.
package xgboost

//go:generate go run ./testdata/genparquet
