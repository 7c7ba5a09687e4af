from django.urls import path

from billing import views

app_name = "billing"

urlpatterns = [
    path("pricing/", views.pricing, name="pricing"),
    path("pricing/<int:pack_id>/buy/", views.buy, name="buy"),
    path("account/credits/", views.credits, name="credits"),
    path("account/credits.csv", views.credits_csv, name="credits_csv"),
    path("billing/stripe/webhook/", views.stripe_webhook, name="stripe_webhook"),
]
