"""CDS Hooks 2.0 service: `patient-view` cards that flag second-opinion triggers and launch the app."""
