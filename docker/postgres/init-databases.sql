-- Run once by the postgres image on an empty volume (docker-entrypoint-initdb.d), as
-- POSTGRES_USER, after it created POSTGRES_DB (ia_continu, the application's database).
-- MLflow's tracking store and Prefect's server each get their own database.
CREATE DATABASE mlflow;
CREATE DATABASE prefect;
