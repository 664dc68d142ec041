//! The credit file (L2): documents, their contents and key financials,
//! shared by both backends.

/// Columns of `credit_documents` as `document_from_row` reads them.
#[doc(hidden)]
#[macro_export]
macro_rules! document_columns {
    () => {
        "id, borrower_id, case_id, doc_type, media_type, sha256, size_bytes, added_by, \
         added_at, replaces, superseded_by"
    };
}

/// Expands `CreditFileTx` for `$ty`, and `case_file_documents` (the
/// current documents of a case as its file's hash covers them), which
/// loading a case calls.
#[macro_export]
macro_rules! credit_file_tx {
    ($ty:ty) => {
        fn document_from_row(row: &DbRow) -> StoreResult<StoredDocument> {
            let size: i64 = get(row, "size_bytes")?;
            Ok(StoredDocument {
                id: DocumentId::from_uuid(get_id(row, "id")?),
                borrower_id: BorrowerId::from_uuid(get_id(row, "borrower_id")?),
                case_id: get_opt_id(row, "case_id")?.map(CaseId::from_uuid),
                doc_type: get(row, "doc_type")?,
                media_type: parse_text(&get::<String>(row, "media_type")?, "media type")?,
                sha256: get(row, "sha256")?,
                size,
                added_by: get_staff(row, "added_by")?,
                added_at: get(row, "added_at")?,
                replaces: get_opt_id(row, "replaces")?.map(DocumentId::from_uuid),
                superseded_by: get_opt_id(row, "superseded_by")?.map(DocumentId::from_uuid),
            })
        }

        fn decimal_column(row: &DbRow, column: &str) -> StoreResult<Decimal> {
            parse_text(&get::<String>(row, column)?, "amount")
        }

        fn financials_from_row(row: &DbRow) -> StoreResult<BorrowerFinancials> {
            Ok(BorrowerFinancials {
                borrower_id: BorrowerId::from_uuid(get_id(row, "borrower_id")?),
                reporting_date: parse_text(
                    &get::<String>(row, "reporting_date")?,
                    "reporting date",
                )?,
                currency: get(row, "currency")?,
                revenue: decimal_column(row, "revenue")?,
                ebitda: decimal_column(row, "ebitda")?,
                total_debt: decimal_column(row, "total_debt")?,
                equity: decimal_column(row, "equity")?,
                debt_service: decimal_column(row, "debt_service")?,
                recorded_by: get_staff(row, "recorded_by")?,
                recorded_at: get(row, "recorded_at")?,
            })
        }

        impl $ty {
            /// The current (not superseded) documents of a case, oldest
            /// first, as the case file's hash covers them (V3, L2).
            pub(crate) async fn case_file_documents(
                &mut self,
                case: CaseId,
            ) -> StoreResult<Vec<creditops_domain::credit_file::FileDocument>> {
                let rows = sqlx::query(
                    "SELECT id, doc_type, sha256 FROM credit_documents \
                     WHERE case_id = $1 AND superseded_by IS NULL ORDER BY added_at, id",
                )
                .bind(id_arg(case))
                .fetch_all(&mut *self.tx)
                .await
                .map_err(map_sqlx_error)?;
                rows.iter()
                    .map(|row| {
                        Ok(creditops_domain::credit_file::FileDocument {
                            id: DocumentId::from_uuid(get_id(row, "id")?),
                            doc_type: get(row, "doc_type")?,
                            sha256: get(row, "sha256")?,
                        })
                    })
                    .collect()
            }

            async fn documents_where(
                &mut self,
                condition: &'static str,
                id: DbId,
            ) -> StoreResult<Vec<StoredDocument>> {
                let sql = format!(
                    "SELECT {} FROM credit_documents WHERE {condition} ORDER BY added_at, id",
                    $crate::document_columns!()
                );
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(id)
                    .fetch_all(&mut *self.tx)
                    .await
                    .map_err(map_sqlx_error)?;
                rows.iter().map(document_from_row).collect()
            }
        }

        #[$crate::async_trait]
        impl CreditFileTx for $ty {
            async fn insert_document(
                &mut self,
                document: &StoredDocument,
                content: &[u8],
            ) -> StoreResult<()> {
                sqlx::query(concat!(
                    "INSERT INTO credit_documents (",
                    $crate::document_columns!(),
                    ", audit_event_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
                ))
                .bind(id_arg(document.id))
                .bind(id_arg(document.borrower_id))
                .bind(document.case_id.map(id_arg))
                .bind(&document.doc_type)
                .bind(document.media_type.as_str())
                .bind(&document.sha256)
                .bind(document.size)
                .bind(document.added_by.as_str())
                .bind(micros(document.added_at))
                .bind(document.replaces.map(id_arg))
                .bind(document.superseded_by.map(id_arg))
                .bind(self.audit_id())
                .execute(&mut *self.tx)
                .await
                .map_err(conflict("a document with this id exists already"))?;
                sqlx::query("INSERT INTO document_contents (document_id, content) VALUES ($1, $2)")
                    .bind(id_arg(document.id))
                    .bind(content)
                    .execute(&mut *self.tx)
                    .await
                    .map_err(map_sqlx_error)?;
                Ok(())
            }

            async fn document(&mut self, id: DocumentId) -> StoreResult<Option<StoredDocument>> {
                let row = sqlx::query(concat!(
                    "SELECT ",
                    $crate::document_columns!(),
                    " FROM credit_documents WHERE id = $1"
                ))
                .bind(id_arg(id))
                .fetch_optional(&mut *self.tx)
                .await
                .map_err(map_sqlx_error)?;
                row.as_ref().map(document_from_row).transpose()
            }

            async fn document_content(&mut self, id: DocumentId) -> StoreResult<Option<Vec<u8>>> {
                let row: Option<(Vec<u8>,)> =
                    sqlx::query_as("SELECT content FROM document_contents WHERE document_id = $1")
                        .bind(id_arg(id))
                        .fetch_optional(&mut *self.tx)
                        .await
                        .map_err(map_sqlx_error)?;
                Ok(row.map(|(content,)| content))
            }

            async fn supersede_document(
                &mut self,
                old: DocumentId,
                new: DocumentId,
            ) -> StoreResult<()> {
                let done = sqlx::query(
                    "UPDATE credit_documents SET superseded_by = $2 \
                     WHERE id = $1 AND superseded_by IS NULL",
                )
                .bind(id_arg(old))
                .bind(id_arg(new))
                .execute(&mut *self.tx)
                .await
                .map_err(map_sqlx_error)?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::Conflict(
                        "the document is superseded already (or does not exist)".into(),
                    ));
                }
                Ok(())
            }

            async fn case_documents(&mut self, case: CaseId) -> StoreResult<Vec<StoredDocument>> {
                self.documents_where("case_id = $1", id_arg(case)).await
            }

            async fn borrower_documents(
                &mut self,
                borrower: BorrowerId,
            ) -> StoreResult<Vec<StoredDocument>> {
                self.documents_where("borrower_id = $1 AND case_id IS NULL", id_arg(borrower))
                    .await
            }

            async fn put_financials(&mut self, financials: &BorrowerFinancials) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO borrower_financials (borrower_id, reporting_date, currency, \
                     revenue, ebitda, total_debt, equity, debt_service, recorded_by, \
                     recorded_at, audit_event_id) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
                     ON CONFLICT (borrower_id, reporting_date) DO UPDATE SET \
                     currency = EXCLUDED.currency, revenue = EXCLUDED.revenue, \
                     ebitda = EXCLUDED.ebitda, total_debt = EXCLUDED.total_debt, \
                     equity = EXCLUDED.equity, debt_service = EXCLUDED.debt_service, \
                     recorded_by = EXCLUDED.recorded_by, recorded_at = EXCLUDED.recorded_at, \
                     audit_event_id = EXCLUDED.audit_event_id",
                )
                .bind(id_arg(financials.borrower_id))
                .bind(financials.reporting_date.to_string())
                .bind(&financials.currency)
                .bind(financials.revenue.to_string())
                .bind(financials.ebitda.to_string())
                .bind(financials.total_debt.to_string())
                .bind(financials.equity.to_string())
                .bind(financials.debt_service.to_string())
                .bind(financials.recorded_by.as_str())
                .bind(micros(financials.recorded_at))
                .bind(self.audit_id())
                .execute(&mut *self.tx)
                .await
                .map_err(map_sqlx_error)?;
                Ok(())
            }

            async fn financials(
                &mut self,
                borrower: BorrowerId,
            ) -> StoreResult<Vec<BorrowerFinancials>> {
                let rows = sqlx::query(
                    "SELECT borrower_id, reporting_date, currency, revenue, ebitda, total_debt, \
                     equity, debt_service, recorded_by, recorded_at FROM borrower_financials \
                     WHERE borrower_id = $1 ORDER BY reporting_date DESC",
                )
                .bind(id_arg(borrower))
                .fetch_all(&mut *self.tx)
                .await
                .map_err(map_sqlx_error)?;
                rows.iter().map(financials_from_row).collect()
            }
        }
    };
}
